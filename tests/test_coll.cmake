lc_add_test(test_coll SOURCES test_coll.c TIMEOUT 30 LABELS "coll")
