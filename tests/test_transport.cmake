# Every case takes at most 8 s (test_straggler).
lc_add_test(test_transport SOURCES test_transport.c tl_harness.c TIMEOUT 60 LABELS "transport;multiprocess")
