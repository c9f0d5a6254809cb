# README.md length and every relative link in README.md and docs/*.md (scripts/check-docs.sh).
add_test(NAME test_docs COMMAND bash ${PROJECT_SOURCE_DIR}/scripts/check-docs.sh ${PROJECT_SOURCE_DIR})
set_tests_properties(test_docs PROPERTIES TIMEOUT 60 LABELS "unit")
