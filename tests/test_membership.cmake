# Views, steps and the coordinator with real ranks (api/membership.c, ft/).
# Each case takes 1-3 s; the zombie waits out a 400 ms peer timeout.
lc_add_test(test_membership SOURCES test_membership.c TIMEOUT 60 LABELS "membership;multiprocess")
# test_coordinator_restart starts lccoord itself.
add_dependencies(test_membership lccoord)
target_compile_definitions(test_membership PRIVATE LC_TEST_LCCOORD="$<TARGET_FILE:lccoord>")
