# The main job (perf/bench-compressed.sh) at 4 MiB on emulated hosts: its
# table, files, Ctrl-C and the unprivileged loopback fallback (root and ip
# netns; skipped otherwise).
if(TARGET lc-bench AND TARGET lc-linkemu)
  add_test(NAME test_mainjob COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_mainjob.sh
           ${PROJECT_BINARY_DIR})
  set_tests_properties(test_mainjob PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77
                       LABELS "bench;net;multiprocess;nosan")
endif()
