lc_add_test(test_coll SOURCES test_coll.c TIMEOUT 60 LABELS "coll")
