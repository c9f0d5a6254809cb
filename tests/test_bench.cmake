# lc-bench end to end: 3 ranks under lcrun, JSON rows checked (and the Gloo baseline when built).
if(TARGET lcrun AND TARGET lc-bench)
  add_test(NAME test_bench COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_bench.sh
           $<TARGET_FILE:lcrun> $<TARGET_FILE:lc-bench>
           $<IN_LIST:LC_BENCH_GLOO=1,$<TARGET_PROPERTY:lc-bench,COMPILE_DEFINITIONS>>)
  set_tests_properties(test_bench PROPERTIES TIMEOUT 240 SKIP_RETURN_CODE 77
                       LABELS "bench;multiprocess;nosan")
endif()
