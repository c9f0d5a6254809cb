/*
 * Training that survives a rank's death: 4 ranks fit a linear model to
 * synthetic data with a onebit-compressed all-reduce of the gradient (error
 * feedback on), one rank is killed mid-run, and the other 3 finish. Each
 * step ends with lc_step_commit(): a committed step is applied, an aborted
 * one is dropped (its residuals and input are put back) and the survivors
 * move to the next view with lc_comm_shrink(). Run with
 *   lcrun --keep-going -n 4 ./resilient_train [STEPS [VICTIM KILL_STEP]]
 * (defaults: 60 steps; rank 2 kills itself in step 20; VICTIM -1: nobody).
 */
#include <laconic.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#define DIM 4096 /* parameters */
#define BATCH 32 /* samples per rank per step */

/* The model to find: the same on every rank. */
static float target(int i)
{
    return sinf(0.01f * (float)i);
}

/* A sample's features: a deterministic stream per (rank, step, sample). */
static float feature(int rank, int step, int s, int i)
{
    unsigned h = (unsigned)rank * 7919u + (unsigned)step * 104729u + (unsigned)s * 1299709u +
                 (unsigned)i * 15485863u;
    h ^= h >> 13;
    h *= 0x5bd1e995u;
    h ^= h >> 15;
    return (float)(h & 0xffff) / 65535.0f - 0.5f;
}

/* Gradient of the mean squared error of this rank's batch at w. */
static void gradient(const float *w, int rank, int step, float *g)
{
    static float x[DIM];
    for (int i = 0; i < DIM; i++) g[i] = 0;
    for (int s = 0; s < BATCH; s++) {
        float err = 0;
        for (int i = 0; i < DIM; i++) {
            x[i] = feature(rank, step, s, i);
            err += x[i] * (w[i] - target(i));
        }
        for (int i = 0; i < DIM; i++) g[i] += 2.0f * err * x[i] / BATCH;
    }
}

static double distance(const float *w)
{
    double d = 0;
    for (int i = 0; i < DIM; i++) d += (double)(w[i] - target(i)) * (w[i] - target(i));
    return sqrt(d);
}

int main(int argc, char **argv)
{
    int steps = argc > 1 ? atoi(argv[1]) : 60;
    int victim = argc > 2 ? atoi(argv[2]) : 2;
    int kill_step = argc > 3 ? atoi(argv[3]) : 20;
    static float w[DIM], g[DIM];
    lc_comm_params_t cp = { .field_mask = LC_COMM_PARAM_FIELD_STEPS, .steps = 1 };
    lc_op_params_t op = { .field_mask = LC_OP_PARAM_FIELD_CODEC | LC_OP_PARAM_FIELD_TENSOR_KEY |
                                        LC_OP_PARAM_FIELD_FLAGS,
                          .codec = LC_CODEC_ONEBIT,
                          .tensor_key = 1,
                          .flags = LC_OP_FLAG_RESTORE_INPUT };
    lc_comm_t *comm;
    lc_view_t v;
    int done = 0, lost = 0, attempt = 0;
    lc_status_t st = lc_comm_init(&cp, &comm);

    if (st != LC_OK) {
        fprintf(stderr, "lc_comm_init: %s\n", lc_status_str(st));
        return 1;
    }
    lc_comm_view(comm, &v);
    const int me = v.first_rank, first_size = v.first_size;
    double d0 = distance(w);
    while (done < steps) {
        attempt++;
        gradient(w, me, attempt, g);
        if (me == victim && attempt == kill_step) {
            printf("rank %d: killing myself in step %d\n", me, attempt);
            fflush(stdout);
            raise(SIGKILL);
        }
        st = lc_allreduce(g, g, DIM, LC_FLOAT32, LC_SUM, comm, &op);
        int committed = 0;
        lc_status_t sc = lc_step_commit(comm, &committed);
        if (sc != LC_OK) {
            fprintf(stderr, "rank %d: lc_step_commit: %s\n", me, lc_status_str(sc));
            return 1;
        }
        if (committed) {
            lc_comm_view(comm, &v);
            for (int i = 0; i < DIM; i++) w[i] -= 0.05f * g[i] / (float)v.size;
            done++;
            continue;
        }
        lost++;
        printf("rank %d: step %d aborted (allreduce: %s); shrinking\n", me, attempt,
               lc_status_str(st));
        sc = lc_comm_shrink(comm);
        if (sc != LC_OK) {
            fprintf(stderr, "rank %d: lc_comm_shrink: %s\n", me, lc_status_str(sc));
            return 1;
        }
        lc_comm_view(comm, &v);
        printf("rank %d: now rank %d of %d in view %u (left:", me, v.rank, v.size, v.epoch);
        for (int i = 0; i < v.nleft; i++) printf(" %d", v.left[i]);
        printf(")\n");
    }
    /* Every survivor must hold the same model: compare a checksum. */
    double sum = 0, lo, hi;
    for (int i = 0; i < DIM; i++) sum += w[i] * (double)(i % 7 + 1);
    lo = hi = sum;
    st = lc_allreduce(&lo, &lo, 1, LC_FLOAT64, LC_MIN, comm, NULL);
    if (st == LC_OK) st = lc_allreduce(&hi, &hi, 1, LC_FLOAT64, LC_MAX, comm, NULL);
    lc_comm_view(comm, &v);
    printf("rank %d: finished %d steps on %d of %d ranks; %d step(s) lost; distance to the "
           "model %.3f -> %.3f; models %s\n",
           me, done, v.size, first_size, lost, d0, distance(w),
           st != LC_OK ? lc_status_str(st)
           : lo == hi  ? "identical"
                       : "DIFFER");
    lc_comm_destroy(comm);
    return st == LC_OK && lo == hi && distance(w) < d0 ? 0 : 1;
}
