# wan-slow: a slow long-haul link, 100 Mbit/s per host and 80 ms RTT
# (40 ms each way), through lc-linkemu. MTU 9000 for the emulator's sake: at
# MTU 1500 its per-packet timer wake-ups on this 2-core VM cost 4 hosts 5-9%
# of the configured rate (4-stream probe: 83-91 Mbit/s of the 96.5 TCP can
# carry), at 9000 the probe gets 97.7-100 of 99.4.
LINK=emu
RATE_MBIT=100
DELAY_MS=40
MTU=9000
