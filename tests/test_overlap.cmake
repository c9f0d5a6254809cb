# lc-overlap (perf/lc-overlap.c) under lcrun, its JSON checked by tests/test_overlap.sh.
if(TARGET lcrun AND TARGET lc-overlap)
  add_test(NAME test_overlap COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_overlap.sh
           $<TARGET_FILE:lcrun> $<TARGET_FILE:lc-overlap>)
  set_tests_properties(test_overlap PROPERTIES TIMEOUT 120 SKIP_RETURN_CODE 77
                       LABELS "overlap;multiprocess;nosan")
endif()
