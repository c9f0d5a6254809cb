/*
 * Convergence: gradient descent on a generated least-squares problem, each
 * gradient sent through a codec (with error feedback when it keeps one),
 * must reach the uncompressed run's final loss within 1%.
 *
 * The problem: A is m x d Gaussian, b = A w* + noise, loss
 * L(w) = |A w - b|^2 / (2m), gradient Q w - c with Q = A^T A / m and
 * c = A^T b / m formed once (d x d per step instead of 2 m x d, so the test
 * stays quick under ASan). The noise makes the
 * optimum's loss positive, so "within 1%" is a relative statement about
 * reaching the same optimum. Step 1 / (2 lambda_max) (lambda_max from power
 * iteration), 3000 steps. Top-k sends a few coordinates per step (2 of 100
 * at 2%), and with
 * error feedback the residual it releases later acts like a delayed step:
 * at the dense codecs' step size it diverges (a plain double-precision
 * re-implementation does too), so top-k runs with a tenth of the step and
 * ten times the steps, and is compared with the uncompressed run at that
 * same step size and count.
 */
#include "tests/codecs/codec_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LS_M 400
#define LS_D 100
#define LS_STEPS 3000

typedef struct {
    double a[LS_M][LS_D], b[LS_M], q[LS_D][LS_D], c[LS_D], lr;
} ls_problem_t;

static void ls_make(ls_problem_t *p)
{
    float *r = lc_codec_test_data(LS_M * LS_D + LS_D + LS_M, LC_DATA_GAUSSIAN, 99);
    double w[LS_D], v[LS_D], lam = 0;
    for (int i = 0; i < LS_M; i++)
        for (int j = 0; j < LS_D; j++) p->a[i][j] = r[i * LS_D + j];
    for (int j = 0; j < LS_D; j++) w[j] = r[LS_M * LS_D + j];
    for (int i = 0; i < LS_M; i++) {
        double s = 0;
        for (int j = 0; j < LS_D; j++) s += p->a[i][j] * w[j];
        p->b[i] = s + 0.5 * r[LS_M * LS_D + LS_D + i];
    }
    for (int j = 0; j < LS_D; j++) v[j] = 1.0;
    for (int it = 0; it < 50; it++) { /* power iteration on A^T A / m */
        double av[LS_M], u[LS_D], n = 0;
        for (int i = 0; i < LS_M; i++) {
            av[i] = 0;
            for (int j = 0; j < LS_D; j++) av[i] += p->a[i][j] * v[j];
        }
        for (int j = 0; j < LS_D; j++) {
            u[j] = 0;
            for (int i = 0; i < LS_M; i++) u[j] += p->a[i][j] * av[i];
            u[j] /= LS_M;
            n += u[j] * u[j];
        }
        lam = sqrt(n);
        for (int j = 0; j < LS_D; j++) v[j] = u[j] / lam;
    }
    p->lr = 0.5 / lam;
    for (int j = 0; j < LS_D; j++) {
        for (int k = 0; k < LS_D; k++) {
            double t = 0;
            for (int i = 0; i < LS_M; i++) t += p->a[i][j] * p->a[i][k];
            p->q[j][k] = t / LS_M;
        }
        double t = 0;
        for (int i = 0; i < LS_M; i++) t += p->a[i][j] * p->b[i];
        p->c[j] = t / LS_M;
    }
    free(r);
}

/* The gradient at w. */
static void ls_grad(const ls_problem_t *p, const double *w, float *g)
{
    for (int j = 0; j < LS_D; j++) {
        double s = -p->c[j];
        for (int k = 0; k < LS_D; k++) s += p->q[j][k] * w[k];
        g[j] = (float)s;
    }
}

/* The loss at w. */
static double ls_loss(const ls_problem_t *p, const double *w)
{
    double loss = 0;
    for (int i = 0; i < LS_M; i++) {
        double s = -p->b[i];
        for (int j = 0; j < LS_D; j++) s += p->a[i][j] * w[j];
        loss += s * s;
    }
    return loss / (2.0 * LS_M);
}

/* Final loss after steps steps of lr_scale * lr, gradients through spec (NULL: uncompressed). */
static double ls_run(const ls_problem_t *p, const char *spec, double lr_scale, int steps)
{
    double w[LS_D] = { 0 };
    float g[LS_D], d[LS_D];
    lc_codec_t *c = spec ? lc_codec_test_make(spec) : NULL;
    lc_codec_state_t *st = NULL;
    size_t cap = c ? lc__codec_max_encoded_size(c, LS_D) : 0, len;
    uint8_t *m = malloc(cap + 1);
    if (c) assert_int_equal(lc__codec_state_create(c, LS_D, &st), LC_OK);
    for (int t = 0; t < steps; t++) {
        ls_grad(p, w, g);
        if (c) {
            assert_int_equal(lc__codec_encode(c, st, 0, g, LC_FLOAT32, LS_D, m, cap, &len), LC_OK);
            assert_int_equal(lc__codec_decode(c, m, len, d, LS_D), LC_OK);
        } else {
            memcpy(d, g, sizeof(d));
        }
        for (int j = 0; j < LS_D; j++) w[j] -= lr_scale * p->lr * d[j];
    }
    double loss = ls_loss(p, w);
    lc__codec_state_destroy(st);
    lc__codec_destroy(c);
    free(m);
    return loss;
}

static void test_convergence_all_codecs(void **state)
{
    static const char *const specs[] = { "none",          "zstd:force", "onebit:64",
                                         "onebit:64:rms", "topk:0.02",  "topk:0.05:approx",
                                         "topk:k=3",      "int8:64",    "int8:64:stochastic",
                                         "fp16",          "bf16",       "onebit:64+zstd:force" };
    ls_problem_t *p = malloc(sizeof(*p));
    assert_non_null(p);
    ls_make(p);
    double ref = ls_run(p, NULL, 1.0, LS_STEPS), ref_small = ls_run(p, NULL, 0.1, 10 * LS_STEPS);
    double w0[LS_D] = { 0 };
    printf("# least squares %dx%d: loss %.6f at 0; uncompressed %.6f after %d steps, %.6f after "
           "%d tenth-steps\n",
           LS_M, LS_D, ls_loss(p, w0), ref, LS_STEPS, ref_small, 10 * LS_STEPS);
    for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
        int small = strncmp(specs[i], "topk", 4) == 0;
        double r = small ? ref_small : ref;
        double l =
            small ? ls_run(p, specs[i], 0.1, 10 * LS_STEPS) : ls_run(p, specs[i], 1.0, LS_STEPS);
        printf("#   %-22s final loss %.6f (%+.3f%%)\n", specs[i], l, 100.0 * (l - r) / r);
        assert_true(fabs(l - r) <= 0.01 * r);
    }
    free(p);
}

LC_CODEC_TESTS(lc_convergence_tests, cmocka_unit_test(test_convergence_all_codecs))

/* lc__codec_encode_ef (residual read from one state, written to another, as
 * the collectives use it) gives the bytes, residual and random stream that
 * lc__codec_encode gives on a copy of the state, and leaves the input state
 * as it was: onebit through its split kernels (both ISAs), topk and int8
 * through the copying fallback. */
static void test_encode_split_residual(void **state)
{
    (void)state;
    const char *specs[] = { "onebit", "onebit:256:rms", "topk:0.05", "int8:64:stochastic" };
    const size_t n = 10007, off = 300, k = 9000;
    lc_codec_isa_t isas[2], orig = lc__codec_isa();
    int nisa = lc_codec_test_isas(isas);
    float *x = malloc(n * sizeof(float));
    assert_non_null(x);
    for (size_t i = 0; i < n; i++) x[i] = (float)sin((double)i * 0.7) * (float)(1 + i % 5);
    for (int ii = 0; ii < nisa; ii++) {
        lc__codec_set_isa(isas[ii]);
        for (size_t sp = 0; sp < sizeof(specs) / sizeof(specs[0]); sp++) {
            lc_codec_t *c = lc_codec_test_make(specs[sp]);
            lc_codec_state_t *a, *b, *ref;
            assert_int_equal(lc__codec_state_create(c, n, &a), LC_OK);
            assert_int_equal(lc__codec_state_create(c, n, &b), LC_OK);
            assert_int_equal(lc__codec_state_create(c, n, &ref), LC_OK);
            /* Give the committed state a residual and a stream position. */
            size_t cap = lc__codec_max_encoded_size(c, k), l1, l2;
            uint8_t *m1 = malloc(cap), *m2 = malloc(cap);
            assert_non_null(m1);
            assert_non_null(m2);
            assert_int_equal(lc__codec_encode(c, a, off, x + off, LC_FLOAT32, k, m1, cap, &l1),
                             LC_OK);
            if (a->residual != NULL) {
                memcpy(ref->residual, a->residual, n * sizeof(float));
                memset(b->residual, 0x7f, n * sizeof(float)); /* garbage: must be overwritten */
            }
            ref->rng = b->rng = a->rng;
            float *saved = a->residual ? malloc(n * sizeof(float)) : NULL;
            if (saved) memcpy(saved, a->residual, n * sizeof(float));
            assert_int_equal(lc__codec_encode(c, ref, off, x + off, LC_FLOAT32, k, m1, cap, &l1),
                             LC_OK);
            assert_int_equal(
                lc__codec_encode_ef(c, a, b, off, 0, x + off, LC_FLOAT32, k, m2, cap, &l2), LC_OK);
            assert_int_equal(l1, l2);
            assert_memory_equal(m1, m2, l1);
            assert_true(ref->rng == b->rng);
            if (saved) {
                assert_memory_equal(ref->residual + off, b->residual + off, k * sizeof(float));
                assert_memory_equal(saved, a->residual, n * sizeof(float));
            }
            free(saved);
            free(m1);
            free(m2);
            lc__codec_state_destroy(a);
            lc__codec_state_destroy(b);
            lc__codec_state_destroy(ref);
            lc__codec_destroy(c);
        }
    }
    lc__codec_set_isa(orig);
    free(x);
}

LC_CODEC_TESTS(lc_split_tests, cmocka_unit_test(test_encode_split_residual))
