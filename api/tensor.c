/*
 * What a communicator keeps for compressed collectives: the codecs it has
 * instantiated (one per canonical spec: their scratch is reused by every
 * call with that spec) and the error-feedback residuals of each tensor key.
 *
 * Life of a tensor's residuals: a call with a key binds the key to its
 * element count and codec and allocates the residuals zeroed. While the
 * collective runs, its encodes read the committed residual and write the
 * other buffer (coll/sched.h); when it succeeds the two swap, when it fails
 * nothing changes, so a retried collective never counts a gradient twice.
 * Every algorithm writes the whole range it was given (the worker residual
 * over the input; the reducer residual over the segment the rank owns), so
 * the buffer left over after a swap is fully rewritten before the next swap.
 * Under LC_EF_HOPS the range of a rank's final encode (its two-phase
 * segment, the ring's own segment, a tree root's half) is neither read nor
 * written.
 *
 * Codecs and tensors are created on the caller's thread under comm->lock
 * and used only by whichever thread runs the engine; a tensor is freed by
 * lc_tensor_release, or by the engine when its last user completes.
 */
#include "api/comm.h"
#include "core/util.h"

#include <stdlib.h>
#include <string.h>

lc_status_t lc__comm_codec_get(lc_comm_t *comm, const lc_codec_params_t *params,
                               lc_codec_t **codec_p)
{
    char spec[LC_CODEC_SPEC_MAX];
    lc_codec_entry_t *e;

    lc__codec_format(params, spec, sizeof(spec));
    for (e = comm->codecs; e != NULL; e = e->next) {
        if (strcmp(e->spec, spec) == 0) {
            *codec_p = e->codec;
            return LC_OK;
        }
    }
    e = calloc(1, sizeof(*e));
    if (e == NULL) return LC_ERR_NO_MEMORY;
    lc_status_t st = lc__codec_create(params, &e->codec);
    if (st != LC_OK) {
        free(e);
        return st;
    }
    memcpy(e->spec, spec, sizeof(spec));
    e->next = comm->codecs;
    comm->codecs = e;
    *codec_p = e->codec;
    return LC_OK;
}

static void lc__tensor_free(lc_tensor_t *t)
{
    for (int i = 0; i < 3; i++) {
        lc__codec_state_destroy(t->w[i]);
        lc__codec_state_destroy(t->red[i]);
    }
    free(t);
}

/* Fresh, zeroed states for count elements. */
static lc_status_t lc__tensor_rebind(lc_tensor_t *t, size_t count)
{
    for (int i = 0; i < 3; i++) {
        lc__codec_state_destroy(t->w[i]);
        lc__codec_state_destroy(t->red[i]);
        t->w[i] = t->red[i] = NULL;
    }
    t->count = 0; /* bound to nothing until both states exist */
    t->red_cnt = 0;
    t->snap = t->red_snap = 0;
    for (int i = 0; i < 2; i++)
        if (lc__codec_state_create(t->codec, count, &t->w[i]) != LC_OK) return LC_ERR_NO_MEMORY;
    t->count = count;
    return LC_OK;
}

lc_status_t lc__tensor_acquire(lc_comm_t *comm, uint64_t key, lc_codec_t *codec, size_t count,
                               lc_ef_t ef, lc_tensor_t **t_p)
{
    lc_tensor_t *t;

    for (t = comm->tensors; t != NULL; t = t->next) {
        if (t->key != key) continue;
        if (t->ef != ef) {
            lc_error("tensor key %llu keeps error feedback of scheme %d; this call asks for %d "
                     "(lc_tensor_release the key first)",
                     (unsigned long long)key, (int)t->ef, (int)ef);
            return LC_ERR_MISMATCH;
        }
        if (t->count != count && t->codec == codec && t->epoch != comm->epoch && t->busy == 0) {
            /* An all-to-all's extent follows the view's size: its residuals
             * were for the old view's destinations and cannot carry over. */
            lc_info("tensor key %llu: %zu elements in view %u, %zu before; its residuals start "
                    "again from zero",
                    (unsigned long long)key, count, comm->epoch, t->count);
            lc_status_t st = lc__tensor_rebind(t, count);
            if (st != LC_OK) return st;
            t->epoch = comm->epoch;
        }
        if (t->count != count || t->codec != codec) {
            char a[LC_CODEC_SPEC_MAX], b[LC_CODEC_SPEC_MAX];
            lc__codec_format(lc__codec_params(t->codec), a, sizeof(a));
            lc__codec_format(lc__codec_params(codec), b, sizeof(b));
            lc_error("tensor key %llu holds %zu elements coded %s; this call has %zu coded %s "
                     "(lc_tensor_release the key first)",
                     (unsigned long long)key, t->count, a, count, b);
            return LC_ERR_MISMATCH;
        }
        t->busy++;
        *t_p = t;
        return LC_OK;
    }
    t = calloc(1, sizeof(*t));
    if (t == NULL) return LC_ERR_NO_MEMORY;
    t->key = key;
    t->count = count;
    t->codec = codec;
    t->ef = ef;
    t->epoch = comm->epoch;
    for (int i = 0; i < 2; i++) {
        if (lc__codec_state_create(codec, count, &t->w[i]) != LC_OK) {
            lc__tensor_free(t);
            return LC_ERR_NO_MEMORY;
        }
    }
    t->busy = 1;
    t->next = comm->tensors;
    comm->tensors = t;
    *t_p = t;
    return LC_OK;
}

/* The scratch a collective writes: [1], or [2] when [1] holds the step's
 * starting state (made on first need). */
static lc_status_t lc__tensor_scratch(lc_tensor_t *t, lc_codec_state_t **s, int snap, size_t count,
                                      int *out_p)
{
    *out_p = snap ? 2 : 1;
    if (snap && s[2] == NULL) return lc__codec_state_create(t->codec, count, &s[2]);
    return LC_OK;
}

lc_status_t lc__tensor_prepare(lc_tensor_t *t, lc_coll_args_t *args, size_t red_off, size_t red_cnt)
{
    int red_out = 1;

    if (t->ef != LC_EF_RESIDUAL && t->ef != LC_EF_HOPS) red_cnt = 0; /* none kept */
    if (red_cnt > 0 && (t->red[0] == NULL || t->red_off != red_off || t->red_cnt != red_cnt)) {
        if (t->red[0] != NULL)
            lc_info("tensor key %llu: this rank now reduces elements [%zu, %zu) instead of "
                    "[%zu, %zu); its reducer residual starts again from zero",
                    (unsigned long long)t->key, red_off, red_off + red_cnt, t->red_off,
                    t->red_off + t->red_cnt);
        if (t->red_snap)
            lc_warn("tensor key %llu: its reducer residual changed range within a step; an "
                    "abort of the step cannot restore it",
                    (unsigned long long)t->key);
        for (int i = 0; i < 3; i++) {
            lc__codec_state_destroy(t->red[i]);
            t->red[i] = NULL;
        }
        t->red_cnt = 0;
        t->red_snap = 0;
        for (int i = 0; i < 2; i++) {
            if (lc__codec_state_create(t->codec, red_cnt, &t->red[i]) != LC_OK) {
                lc__codec_state_destroy(t->red[0]);
                t->red[0] = NULL;
                return LC_ERR_NO_MEMORY;
            }
        }
        t->red_off = red_off;
        t->red_cnt = red_cnt;
    }
    LC_CHECK(lc__tensor_scratch(t, t->w, t->snap, t->count, &t->out));
    if (red_cnt > 0) LC_CHECK(lc__tensor_scratch(t, t->red, t->red_snap, red_cnt, &red_out));
    args->ef_in = t->w[0];
    args->ef_out = t->w[t->out];
    if (red_cnt > 0) {
        args->red_in = t->red[0];
        args->red_out = t->red[red_out];
    }
    return LC_OK;
}

static void lc__swap(lc_codec_state_t **s, int i)
{
    lc_codec_state_t *tmp = s[0];
    s[0] = s[i];
    s[i] = tmp;
}

void lc__tensor_finish(lc_comm_t *comm, lc_tensor_t *t, int commit, const lc_coll_args_t *args)
{
    int free_it;

    if (commit) {
        /* With steps, the first commit of a step leaves its starting state
         * in [1] (snap); later ones swap with [2]. */
        lc__swap(t->w, t->out);
        if (comm->steps) t->snap = 1;
        /* Only when this collective wrote them: a call that reduces nothing
         * (an all-gather on a key an all-reduce also uses) leaves them. */
        if (args->red_out != NULL && t->red[0] != NULL) {
            lc__swap(t->red, args->red_out == t->red[1] ? 1 : 2);
            if (comm->steps) t->red_snap = 1;
        }
    }
    pthread_mutex_lock(&comm->lock);
    free_it = --t->busy == 0 && t->released;
    pthread_mutex_unlock(&comm->lock);
    if (free_it) lc__tensor_free(t);
}

void lc__tensor_step_end(lc_tensor_t *t, int commit)
{
    if (!commit && t->snap) lc__swap(t->w, 1);
    if (!commit && t->red_snap) lc__swap(t->red, 1);
    t->snap = t->red_snap = 0;
}

void lc__tensor_fold_reducer(lc_tensor_t *t)
{
    lc_codec_state_t *w = t->w[0], *r = t->red[0];

    if (r != NULL && w->residual != NULL && r->residual != NULL &&
        t->red_off + t->red_cnt <= t->count)
        for (size_t i = 0; i < t->red_cnt; i++) w->residual[t->red_off + i] += r->residual[i];
    for (int i = 0; i < 3; i++) {
        lc__codec_state_destroy(t->red[i]);
        t->red[i] = NULL;
    }
    t->red_cnt = 0;
    t->red_snap = 0;
}

lc_status_t lc_tensor_release(lc_comm_t *comm, uint64_t key)
{
    lc_tensor_t **pp, *t = NULL;

    if (comm == NULL) {
        lc_error("lc_tensor_release: comm is NULL");
        return LC_ERR_INVALID_ARG;
    }
    pthread_mutex_lock(&comm->lock);
    for (pp = &comm->tensors; *pp != NULL; pp = &(*pp)->next) {
        if ((*pp)->key == key) {
            t = *pp;
            *pp = t->next; /* a later call with the key starts afresh */
            break;
        }
    }
    int free_now = t != NULL && t->busy == 0;
    if (t != NULL) t->released = 1;
    pthread_mutex_unlock(&comm->lock);
    if (t == NULL) {
        lc_debug("lc_tensor_release: no state under tensor key %llu", (unsigned long long)key);
        return LC_OK;
    }
    if (free_now) lc__tensor_free(t);
    return LC_OK;
}

void lc__comm_codecs_free(lc_comm_t *comm)
{
    while (comm->tensors != NULL) {
        lc_tensor_t *t = comm->tensors;
        comm->tensors = t->next;
        lc__tensor_free(t);
    }
    while (comm->codecs != NULL) {
        lc_codec_entry_t *e = comm->codecs;
        comm->codecs = e->next;
        lc__codec_destroy(e->codec);
        free(e);
    }
}
