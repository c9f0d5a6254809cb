# test_training (a 4-rank SGD) takes 16-34 s (160 s with ASan); every other
# case at most 3 s.
lc_add_test(test_compressed SOURCES test_compressed.c TIMEOUT 60 LABELS "coll;multiprocess"
  CASE_TIMEOUTS test_training 150)
