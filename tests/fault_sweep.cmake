# The fault sweep (tests/fault_sweep.c): CI runs a random sample of cases,
# with the seed printed, outside the ASan step (the suite must stay within
# 20 minutes; the kill, abort and shrink paths run under ASan in
# test_membership);
# tests/fault-sweep.sh runs all of them.
add_executable(fault_sweep fault_sweep.c ${CMAKE_CURRENT_SOURCE_DIR}/mp.c)
target_link_libraries(fault_sweep PRIVATE laconic_internal PkgConfig::CMOCKA m)
add_test(NAME fault_sweep.sample COMMAND fault_sweep --sample 40)
set_tests_properties(fault_sweep.sample PROPERTIES TIMEOUT 300 LABELS "membership;multiprocess;nosan")
