# loopback: all ranks on this host over 127.0.0.1; no shaping. What the
# machine itself allows (CPU and memory bound, not wire bound).
LINK=none
RATE_MBIT=0
DELAY_MS=0
MTU=0
