# The control plane (ft/) alone and over TCP between two ranks; test_silence
# takes about 6 s.
lc_add_test(test_ft SOURCES test_ft.c tl_harness.c TIMEOUT 60 LABELS "ft;multiprocess")
