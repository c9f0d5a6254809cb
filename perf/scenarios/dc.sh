# dc: a data-centre network, 1 Gbit/s per host and 0.5 ms RTT, through the
# user-space link emulator (lc-linkemu). MTU 9000 keeps the emulator's packet
# rate (and so its CPU share of this 2-core machine) low.
LINK=emu
RATE_MBIT=1000
DELAY_MS=0.25
MTU=9000
