/*
 * libFuzzer target: one codec's decoders on hostile messages. Built once per
 * codec spec (LC_FUZZ_SPEC, see CMakeLists.txt). Input: two bytes of element
 * count (little-endian, 0..4095) and then the message. decode and
 * decode_accumulate must return LC_OK or LC_ERR_CORRUPT and never touch
 * memory outside the buffers (ASan checks); a failed decode_accumulate must
 * leave the accumulator as it was.
 *
 * With LC_FUZZ_SEEDS=DIR set, the first run writes valid encodings of
 * generated data into DIR as a starting corpus, so the fuzzer begins at
 * messages that pass the header checks.
 */
#include "codecs/codec.h"
#include "core/log.h"
#include "perf/datagen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LC_FUZZ_MAX 4096

static lc_codec_t *lc_fuzz_codec;
static float lc_fuzz_out[LC_FUZZ_MAX], lc_fuzz_acc[LC_FUZZ_MAX], lc_fuzz_ref[LC_FUZZ_MAX];

static void lc_fuzz_seeds(const char *dir)
{
    static const size_t counts[] = { 0, 1, 7, 64, 100, 1000, 4095 };
    lc_codec_state_t *st = NULL;
    size_t cap = lc__codec_max_encoded_size(lc_fuzz_codec, LC_FUZZ_MAX);
    uint8_t *buf = malloc(2 + cap);
    float *x = malloc(LC_FUZZ_MAX * sizeof(float));
    if (buf == NULL || x == NULL) abort();
    for (int kind = 0; kind < 2; kind++) {
        for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
            size_t n = counts[i], len;
            char path[4096];
            lc_datagen_fill(x, n, (lc_data_kind_t)kind, i + 1);
            buf[0] = (uint8_t)n;
            buf[1] = (uint8_t)(n >> 8);
            if (lc__codec_state_create(lc_fuzz_codec, n, &st) != LC_OK ||
                lc__codec_encode(lc_fuzz_codec, st, 0, x, LC_FLOAT32, n, buf + 2, cap, &len) !=
                    LC_OK)
                abort();
            lc__codec_state_destroy(st);
            snprintf(path, sizeof(path), "%s/seed-%d-%zu", dir, kind, n);
            FILE *f = fopen(path, "wb");
            if (f == NULL) continue;
            fwrite(buf, 1, 2 + len, f);
            fclose(f);
        }
    }
    free(buf);
    free(x);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    lc_codec_params_t p;
    (void)argc;
    (void)argv;
    lc__log_set_level(-1); /* every rejected input would log a line */
    if (lc__codec_parse(LC_FUZZ_SPEC, &p) != LC_OK || lc__codec_create(&p, &lc_fuzz_codec) != LC_OK)
        abort();
    const char *seeds = getenv("LC_FUZZ_SEEDS");
    if (seeds != NULL) lc_fuzz_seeds(seeds);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    size_t n = ((size_t)data[0] | (size_t)data[1] << 8) % LC_FUZZ_MAX;
    const uint8_t *m = data + 2;
    size_t len = size - 2;
    /* A copy of exactly len bytes, so ASan sees any read past the message. */
    uint8_t *msg = malloc(len ? len : 1);
    if (msg == NULL) return 0;
    memcpy(msg, m, len);
    lc_status_t st = lc__codec_decode(lc_fuzz_codec, msg, len, lc_fuzz_out, n);
    if (st != LC_OK && st != LC_ERR_CORRUPT) abort();
    for (size_t i = 0; i < n; i++) lc_fuzz_acc[i] = lc_fuzz_ref[i] = (float)i;
    lc_status_t st2 = lc__codec_decode_accumulate(lc_fuzz_codec, msg, len, lc_fuzz_acc, n);
    if (st2 != st) abort(); /* both decoders judge a message alike */
    if (st2 != LC_OK && memcmp(lc_fuzz_acc, lc_fuzz_ref, n * sizeof(float)) != 0) abort();
    free(msg);
    return 0;
}
