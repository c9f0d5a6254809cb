# lan: one namespace per rank on veth pairs to a bridge, 10 Gbit/s each
# way by tbf, no added delay. Jumbo frames (MTU 9000), as 10G LANs use: at
# MTU 1500 this 2-core machine cannot push a shaped 10 Gbit/s (8.7 measured).
LINK=veth
RATE_MBIT=10000
DELAY_MS=0
MTU=9000
