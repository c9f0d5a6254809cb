# Per-case timeouts: a few times the case's time in a RelWithDebInfo build on
# 2 cores (test_correct_8: 21-32 s, test_correct_hosts: 22-62 s; every other
# case at most 11 s), scaled by LC_TEST_TIMEOUT_SCALE in sanitizer builds.
lc_add_test(test_api SOURCES test_api.c TIMEOUT 60 LABELS "api;multiprocess"
  CASE_TIMEOUTS test_correct_8 150 test_correct_hosts 240
  # The TSan step takes the fast cases only, test_[nbumd]* (the full matrix is
  # too slow under TSan on 2 cores); the other steps run every case.
  CASE_LABELS "^test_[nbumd]" threaded)
