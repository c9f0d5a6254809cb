lc_add_test(test_core SOURCES test_core.c TIMEOUT 30 LABELS "core;threaded")
