lc_add_test(test_api SOURCES test_api.c mp.c TIMEOUT 1200 LABELS "api;multiprocess")
