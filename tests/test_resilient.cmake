# The C example that survives a rank's death (examples/resilient_train.c).
if(TARGET lcrun AND TARGET resilient_train)
  add_test(NAME test_resilient COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_resilient.sh
           $<TARGET_FILE:lcrun> $<TARGET_FILE:resilient_train>)
  set_tests_properties(test_resilient PROPERTIES TIMEOUT 150 LABELS "membership;multiprocess")
endif()
