# The emulated network of perf/net (root and ip netns; skipped otherwise).
if(TARGET lc-linkemu AND TARGET lc-netprobe)
  add_test(NAME test_net COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_net.sh
           $<TARGET_FILE:lc-linkemu> $<TARGET_FILE:lc-netprobe> $<TARGET_FILE:lc-bench>)
  set_tests_properties(test_net PROPERTIES TIMEOUT 240 SKIP_RETURN_CODE 77
                       LABELS "net;multiprocess;nosan")
endif()
