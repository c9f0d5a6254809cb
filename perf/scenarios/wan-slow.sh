# wan-slow: a slow long-haul link, 100 Mbit/s per host and 80 ms RTT
# (40 ms each way), through lc-linkemu, standard MTU 1500.
LINK=emu
RATE_MBIT=100
DELAY_MS=40
MTU=1500
