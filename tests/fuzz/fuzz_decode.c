/*
 * libFuzzer target: one codec's decoders on hostile messages. Built once per
 * codec spec (LC_FUZZ_SPEC, see CMakeLists.txt). Input: two little-endian
 * bytes, of which the low 12 bits are the element count (0..4095) and bit 15
 * picks the kernels (0 AVX2 where the CPU has it, 1 portable C), then the
 * message. decode and decode_accumulate must return LC_OK or LC_ERR_CORRUPT
 * and never touch memory outside buffers of exactly count floats (ASan
 * checks); both must judge a message alike; on failure neither output may
 * change, and on success the accumulator must hold its old value plus the
 * decoded one.
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
    lc__codec_set_isa((data[1] & 0x80) ? LC_CODEC_ISA_C : LC_CODEC_ISA_AVX2);
    size_t len = size - 2;
    /* Exact-size copies, so ASan sees any access past the message or the outputs. */
    uint8_t *msg = malloc(len ? len : 1);
    float *out = malloc((n ? n : 1) * sizeof(float)), *acc = malloc((n ? n : 1) * sizeof(float));
    if (msg == NULL || out == NULL || acc == NULL) abort();
    memcpy(msg, data + 2, len);
    for (size_t i = 0; i < n; i++) out[i] = -1.0f, acc[i] = (float)i;
    lc_status_t st = lc__codec_decode(lc_fuzz_codec, msg, len, out, n);
    if (st != LC_OK && st != LC_ERR_CORRUPT) abort();
    if (st != LC_OK)
        for (size_t i = 0; i < n; i++)
            if (out[i] != -1.0f) abort(); /* a failed decode wrote its output */
    lc_status_t st2 = lc__codec_decode_accumulate(lc_fuzz_codec, msg, len, acc, n);
    if (st2 != st) abort(); /* both decoders judge a message alike */
    for (size_t i = 0; i < n; i++) {
        float want = st == LC_OK ? (float)i + out[i] : (float)i;
        if (memcmp(&acc[i], &want, sizeof(float)) != 0 && !(want != want && acc[i] != acc[i]))
            abort(); /* accumulate differs from decode, or changed acc on failure */
    }
    free(msg);
    free(out);
    free(acc);
    return 0;
}
