# wan: a long fat pipe between sites, 1 Gbit/s per host and 40 ms RTT
# (20 ms each way), through lc-linkemu. MTU 9000 for the emulator's sake.
LINK=emu
RATE_MBIT=1000
DELAY_MS=20
MTU=9000
