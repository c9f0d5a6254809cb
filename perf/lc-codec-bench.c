/*
 * lc-codec-bench: throughput and wire ratio of every codec path on one core,
 * against memcpy of the same buffer in the same run.
 *
 *   lc-codec-bench [-s BYTES] [-n ITERS] [--codec SPEC[,SPEC...]] [--data gaussian|gradient|both]
 *                  [--cpu N] [--isa c|avx2] [--no-zstd] [--json FILE]
 *
 * For each data kind and codec spec: encode (with error feedback when the
 * codec keeps a residual), decode and decode_accumulate are each timed over
 * ITERS runs on a buffer of BYTES of f32 (default 64 MiB); the median time
 * gives GB/s of f32 input processed, and vs_memcpy divides it by memcpy's
 * GB/s on the same buffer (median of the same number of runs, measured
 * before each data kind). ratio is f32 bytes / encoded bytes; relerr is
 * ||decode(encode(x)) - x|| / ||x|| for one encode without feedback. Then,
 * unless --no-zstd, the same codec with "+zstd:force" reports what the zstd
 * stage adds: its ratio on the codec's output and its own GB/s.
 *
 * This benchmark measures one layer and so, like that layer's tests, uses
 * the internal codec header (codecs/codec.h), not only laconic.h.
 */
#include "codecs/codec.h"
#include "perf/datagen.h"

#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LC_CB_DEFAULT_CODECS "onebit,topk:0.01,topk:0.01:approx,int8,fp16,bf16,none"

typedef struct {
    size_t bytes;
    int iters;
    const char *codecs;
    int data; /* -1 both, else lc_data_kind_t */
    int cpu;
    int zstd;
    FILE *json;
} lc_cb_opts_t;

static double lc_cb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int lc_cb_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double lc_cb_median(double *t, int n)
{
    qsort(t, (size_t)n, sizeof(double), lc_cb_cmp);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

static size_t lc_cb_size(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (!(v > 0) || v > 1e12) return 0; /* rejected by the caller */
    switch (*end) {
    case 'K':
    case 'k': v *= 1024; break;
    case 'M':
    case 'm': v *= 1024 * 1024; break;
    case 'G':
    case 'g': v *= 1024.0 * 1024 * 1024; break;
    default: break;
    }
    return (size_t)v;
}

static void lc_cb_row(const lc_cb_opts_t *o, const char *data, const char *spec, const char *op,
                      double sec, double memcpy_gbps, double ratio, double relerr)
{
    double gbps = (double)o->bytes / sec / 1e9;
    printf("%-9s %-28s %-11s %10.2f %8.2f %9.2fx %9.2fx %10.2e\n", data, spec, op, sec * 1e3, gbps,
           gbps / memcpy_gbps, ratio, relerr);
    if (o->json)
        fprintf(o->json,
                "{\"codec\":\"%s\",\"op\":\"%s\",\"data\":\"%s\",\"bytes\":%zu,\"time_ms\":%.4f,"
                "\"gbps\":%.4f,\"vs_memcpy\":%.4f,\"ratio\":%.4f,\"relerr\":%.4e}\n",
                spec, op, data, o->bytes, sec * 1e3, gbps, gbps / memcpy_gbps, ratio, relerr);
}

static double lc_cb_memcpy(const lc_cb_opts_t *o, float *dst, const float *src)
{
    double *t = malloc(sizeof(double) * (size_t)o->iters);
    if (t == NULL) return 1e-9;
    memcpy(dst, src, o->bytes); /* fault the pages in */
    for (int i = 0; i < o->iters; i++) {
        double t0 = lc_cb_now();
        memcpy(dst, src, o->bytes);
        t[i] = lc_cb_now() - t0;
    }
    double m = lc_cb_median(t, o->iters);
    free(t);
    return (double)o->bytes / m / 1e9;
}

/* Time one codec spec on x; rows for encode, decode, decode_accumulate (and the zstd stage
 * when the spec has one). Returns nonzero on failure. */
static int lc_cb_codec(const lc_cb_opts_t *o, const char *data, const char *spec, const float *x,
                       float *y, double memcpy_gbps)
{
    const size_t n = o->bytes / sizeof(float);
    lc_codec_params_t p;
    lc_codec_t *c = NULL;
    lc_codec_state_t *st = NULL;
    char canon[LC_CODEC_SPEC_MAX];
    double *t = malloc(sizeof(double) * (size_t)o->iters);
    size_t cap, len = 0;
    uint8_t *msg = NULL;
    int rc = 1;

    if (t == NULL || lc__codec_parse(spec, &p) != LC_OK || lc__codec_create(&p, &c) != LC_OK)
        goto out;
    lc__codec_format(lc__codec_params(c), canon, sizeof(canon));
    cap = lc__codec_max_encoded_size(c, n);
    msg = malloc(cap);
    if (msg == NULL) goto out;
    int ef = (lc__codec_ops(c)->caps & LC_CODEC_CAP_EF) != 0;

    /* Quality: one encode without feedback. */
    if (lc__codec_encode(c, NULL, 0, x, LC_FLOAT32, n, msg, cap, &len) != LC_OK ||
        lc__codec_decode(c, msg, len, y, n) != LC_OK)
        goto out;
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)y[i] - (double)x[i];
        num += d * d;
        den += (double)x[i] * x[i];
    }
    double relerr = den > 0 ? sqrt(num / den) : 0;

    if (ef && lc__codec_state_create(c, n, &st) != LC_OK) goto out;
    lc_codec_zstd_stats_t z0, z1;
    lc__codec_zstd_stats(c, &z0);
    for (int i = 0; i < o->iters; i++) {
        double t0 = lc_cb_now();
        if (lc__codec_encode(c, st, 0, x, LC_FLOAT32, n, msg, cap, &len) != LC_OK) goto out;
        t[i] = lc_cb_now() - t0;
    }
    lc__codec_zstd_stats(c, &z1);
    double ratio = (double)o->bytes / (double)len;
    lc_cb_row(o, data, canon, ef ? "encode+ef" : "encode", lc_cb_median(t, o->iters), memcpy_gbps,
              ratio, relerr);
    for (int i = 0; i < o->iters; i++) {
        double t0 = lc_cb_now();
        if (lc__codec_decode(c, msg, len, y, n) != LC_OK) goto out;
        t[i] = lc_cb_now() - t0;
    }
    lc_cb_row(o, data, canon, "decode", lc_cb_median(t, o->iters), memcpy_gbps, ratio, relerr);
    for (int i = 0; i < o->iters; i++) {
        double t0 = lc_cb_now();
        if (lc__codec_decode_accumulate(c, msg, len, y, n) != LC_OK) goto out;
        t[i] = lc_cb_now() - t0;
    }
    lc_cb_row(o, data, canon, "decode_acc", lc_cb_median(t, o->iters), memcpy_gbps, ratio, relerr);
    if (z1.calls > z0.calls) {
        /* The stage alone: its ratio on the codec's body, and its own speed. */
        double zr = (double)(z1.in_bytes - z0.in_bytes) / (double)(z1.out_bytes - z0.out_bytes);
        double zs = (double)(z1.ns - z0.ns) * 1e-9 / (double)(z1.calls - z0.calls);
        double body = (double)(z1.in_bytes - z0.in_bytes) / (double)(z1.calls - z0.calls);
        printf("%-9s %-28s %-11s %10.2f %8.2f %10s %9.2fx %10s  (zstd stage: %.2fx on %.1f MiB "
               "body, %.2f GB/s of body)\n",
               data, canon, "zstd-stage", zs * 1e3, (double)o->bytes / zs / 1e9, "-", zr, "-", zr,
               body / 1048576.0, body / zs / 1e9);
        if (o->json)
            fprintf(o->json,
                    "{\"codec\":\"%s\",\"op\":\"zstd-stage\",\"data\":\"%s\",\"bytes\":%zu,"
                    "\"time_ms\":%.4f,\"gbps\":%.4f,\"vs_memcpy\":%.4f,\"ratio\":%.4f,"
                    "\"relerr\":0,\"body_bytes\":%.0f,\"body_gbps\":%.4f}\n",
                    canon, data, o->bytes, zs * 1e3, (double)o->bytes / zs / 1e9,
                    (double)o->bytes / zs / 1e9 / memcpy_gbps, zr, body, body / zs / 1e9);
    }
    rc = 0;
out:
    if (rc) fprintf(stderr, "lc-codec-bench: codec '%s' failed (see the log above)\n", spec);
    lc__codec_state_destroy(st);
    lc__codec_destroy(c);
    free(msg);
    free(t);
    return rc;
}

static void lc_cb_usage(void)
{
    printf("usage: lc-codec-bench [-s BYTES] [-n ITERS] [--codec SPEC[,SPEC...]]\n"
           "                      [--data gaussian|gradient|both] [--cpu N] [--isa c|avx2]\n"
           "                      [--no-zstd] [--json FILE]\n"
           "defaults: -s 64M -n 9 --codec " LC_CB_DEFAULT_CODECS " --data both --cpu 0\n");
}

int main(int argc, char **argv)
{
    lc_cb_opts_t o = { .bytes = 64u << 20,
                       .iters = 9,
                       .codecs = LC_CB_DEFAULT_CODECS,
                       .data = -1,
                       .cpu = 0,
                       .zstd = 1 };
    const char *json = NULL;
    int rc = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            lc_cb_usage();
            return 0;
        } else if (!strcmp(a, "--no-zstd")) {
            o.zstd = 0;
            continue;
        }
        if (v == NULL) {
            fprintf(stderr, "lc-codec-bench: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "-s"))
            o.bytes = lc_cb_size(v) / 4 * 4;
        else if (!strcmp(a, "-n"))
            o.iters = atoi(v);
        else if (!strcmp(a, "--codec"))
            o.codecs = v;
        else if (!strcmp(a, "--cpu"))
            o.cpu = atoi(v);
        else if (!strcmp(a, "--json"))
            json = v;
        else if (!strcmp(a, "--data"))
            o.data = !strcmp(v, "gaussian")   ? 0
                     : !strcmp(v, "gradient") ? 1
                     : !strcmp(v, "both")     ? -1
                                              : -2;
        else if (!strcmp(a, "--isa")) {
            if (strcmp(v, "c") != 0 && strcmp(v, "avx2") != 0) {
                fprintf(stderr, "lc-codec-bench: --isa takes c or avx2\n");
                return 2;
            }
            lc_codec_isa_t want = !strcmp(v, "c") ? LC_CODEC_ISA_C : LC_CODEC_ISA_AVX2;
            if (lc__codec_set_isa(want) != want) fprintf(stderr, "lc-codec-bench: no AVX2 here\n");
        } else {
            fprintf(stderr, "lc-codec-bench: unknown option %s\n", a);
            return 2;
        }
    }
    if (o.bytes < 4 || o.iters < 1 || o.data == -2) {
        lc_cb_usage();
        return 2;
    }
    if (o.cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(o.cpu, &set);
        if (sched_setaffinity(0, sizeof(set), &set) != 0) perror("lc-codec-bench: cpu affinity");
    }
    if (json && (o.json = fopen(json, "a")) == NULL) {
        perror(json);
        return 1;
    }
    size_t n = o.bytes / 4;
    float *x = malloc(o.bytes), *y = malloc(o.bytes);
    if (x == NULL || y == NULL) return 1;
    printf("# lc-codec-bench: %zu MiB f32, median of %d runs, one core (cpu %d), isa %s\n",
           o.bytes >> 20, o.iters, o.cpu, lc__codec_isa() == LC_CODEC_ISA_AVX2 ? "avx2" : "c");
    printf("%-9s %-28s %-11s %10s %8s %10s %10s %10s\n", "# data", "codec", "op", "time_ms", "GB/s",
           "vs_memcpy", "ratio", "relerr");
    for (int kind = 0; kind < 2; kind++) {
        if (o.data >= 0 && o.data != kind) continue;
        const char *dname = lc_datagen_name((lc_data_kind_t)kind);
        lc_datagen_fill(x, n, (lc_data_kind_t)kind, 42);
        double mc = lc_cb_memcpy(&o, y, x);
        printf("%-9s %-28s %-11s %10.2f %8.2f %9.2fx %10s %10s\n", dname, "memcpy", "copy",
               (double)o.bytes / mc / 1e6, mc, 1.0, "-", "-");
        if (o.json)
            fprintf(o.json,
                    "{\"codec\":\"memcpy\",\"op\":\"copy\",\"data\":\"%s\",\"bytes\":%zu,"
                    "\"gbps\":%.4f,\"vs_memcpy\":1,\"ratio\":1,\"relerr\":0}\n",
                    dname, o.bytes, mc);
        char *list = strdup(o.codecs);
        if (list == NULL) return 1;
        for (char *save = NULL, *s = strtok_r(list, ",", &save); s;
             s = strtok_r(NULL, ",", &save)) {
            rc |= lc_cb_codec(&o, dname, s, x, y, mc);
            if (o.zstd && strstr(s, "zstd") == NULL) {
                char z[LC_CODEC_SPEC_MAX + 16];
                snprintf(z, sizeof(z), "%s+zstd:force", s);
                if (!strcmp(s, "none")) snprintf(z, sizeof(z), "zstd:force");
                rc |= lc_cb_codec(&o, dname, z, x, y, mc);
            }
        }
        free(list);
    }
    if (o.json) fclose(o.json);
    free(x);
    free(y);
    return rc;
}
