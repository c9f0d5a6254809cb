lc_add_test(test_transport SOURCES test_transport.c mp.c TIMEOUT 300 LABELS "transport;multiprocess")
