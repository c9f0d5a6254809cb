# Codec layer: one executable; each codec's tests in tests/codecs/<codec>.c.
# Every case takes under 4 s (under 9 s with ASan), hence one timeout for all.
file(GLOB _lc_codec_tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/codecs/*.c)
lc_add_test(test_codecs SOURCES test_codecs.c ${PROJECT_SOURCE_DIR}/perf/datagen.c
  ${_lc_codec_tests} TIMEOUT 30 LABELS "codecs")
target_link_libraries(test_codecs PRIVATE m)
