# The layer rule (scripts/check-layers.sh): this checkout keeps it, and the
# check catches includes and declarations that break it (tests/test_layers.sh).
add_test(NAME test_layers COMMAND bash ${PROJECT_SOURCE_DIR}/tests/test_layers.sh ${PROJECT_SOURCE_DIR})
set_tests_properties(test_layers PROPERTIES TIMEOUT 60 LABELS "unit")
