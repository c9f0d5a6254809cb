# perf/report.py (the summary and plots of a benchmark run) on synthetic
# results; skipped (77) without python3, PNG checks skipped without gnuplot.
find_program(LC_PYTHON3 NAMES python3)
if(LC_PYTHON3)
  add_test(NAME test_report COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_report.sh ${LC_PYTHON3})
else()
  add_test(NAME test_report COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_report.sh)
endif()
set_tests_properties(test_report PROPERTIES TIMEOUT 120 SKIP_RETURN_CODE 77 LABELS "unit")
