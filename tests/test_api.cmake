lc_add_test(test_api SOURCES test_api.c mp.c TIMEOUT 1200 LABELS "api;multiprocess")
# The TSan run takes the fast multi-process cases only (the full matrix is
# too slow under TSan on 2 cores); the full run above covers the rest.
add_test(NAME test_api_threaded COMMAND test_api "test_[nbumd]*")
set_tests_properties(test_api_threaded PROPERTIES TIMEOUT 600 LABELS "api;multiprocess;threaded")
