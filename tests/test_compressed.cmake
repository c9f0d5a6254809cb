lc_add_test(test_compressed SOURCES test_compressed.c mp.c TIMEOUT 900 LABELS "coll;multiprocess")
