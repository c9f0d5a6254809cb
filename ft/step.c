/*
 * The step outcome: every survivor gets the same answer to "did the
 * collectives since the last step commit?".
 *
 * Fast path, no coordinator: each member sends every other member its vote
 * (a control message: commit, or the error that failed one of its
 * collectives). A member decides
 * - commit when it holds every member's vote and all are commit;
 * - abort when its own vote or any vote it received is abort.
 * That costs one message delay when nobody fails.
 *
 * A member that will never get some vote (its sender failed or left first)
 * cannot decide alone: another member may hold that vote and have decided
 * commit. It reports to the coordinator, which polls every live member and
 * answers commit if and only if one of them held every vote for commit. A
 * member that answers a poll before it decided stops deciding by itself and
 * takes the coordinator's answer too; one that had decided reports how. So:
 * - a member that decided commit held every commit vote: the coordinator
 *   hears so (or that member is dead, and no survivor's answer matters to it);
 * - a member that decided abort saw an abort vote: nobody held every vote
 *   for commit, so the coordinator answers abort;
 * - every other survivor waits for the coordinator, whose answer is one.
 *
 * A vote names its step and epoch; a member may be one step ahead of us
 * (it decided the step we are still voting on), never two, so two slots
 * per member (by step parity) hold every vote that can matter.
 */
#include "core/bytes.h"
#include "core/log.h"
#include "ft/ft_priv.h"

static void lc__ft_step_decide(lc_ft_t *ft, int commit, int complete)
{
    lc_ft_event_t ev = {
        .type = LC_FT_EVENT_STEP, .peer = -1, .seq = ft->step, .committed = commit
    };

    int k = (int)(ft->step & 1);

    ft->done_step[k] = ft->step;
    ft->done_complete[k] = complete;
    if (ft->c.report && ft->c.report_step == ft->step) ft->c.report = 0;
    ft->step = 0;
    ft->frozen = 0;
    lc__ft_emit(ft, &ev);
}

void lc__ft_step_eval(lc_ft_t *ft)
{
    int waiting = 0, missing = 0;

    if (ft->step == 0 || ft->frozen) return;
    if (ft->own != LC_OK) {
        lc__ft_step_decide(ft, 0, 0);
        return;
    }
    for (int i = 0; i < ft->nmembers; i++) {
        int r = ft->members[i];
        lc_ft_peer_t *p = &ft->peers[r];
        int k = (int)(ft->step & 1);
        if (r == ft->p.rank) continue;
        if (p->vote_step[k] == ft->step && p->vote_epoch[k] == ft->p.epoch) {
            if (p->vote[k] != LC_OK) {
                lc_debug("rank %d votes to abort step %llu (%s)", r, (unsigned long long)ft->step,
                         lc_status_str(p->vote[k]));
                lc__ft_step_decide(ft, 0, 0);
                return;
            }
        } else if (!p->alive || p->left) {
            missing = 1;
        } else {
            waiting = 1;
        }
    }
    if (!waiting && !missing) {
        lc__ft_step_decide(ft, 1, 1);
        return;
    }
    if (missing) {
        /* A vote that cannot come: the coordinator settles the step. */
        lc_info("step %llu: a member was lost before its vote; asking the coordinator",
                (unsigned long long)ft->step);
        ft->frozen = 1;
        lc__ft_coord_report(ft, ft->step, 0, 1);
    }
}

void lc__ft_vote(lc_ft_t *ft, uint64_t step, lc_status_t vote)
{
    lc_ctrl_msg_t m = { .type = LC_CTRL_VOTE, .epoch = ft->p.epoch, .seq = step };

    if (!lc__status_is_error(vote)) vote = LC_OK;
    m.status = vote;
    ft->step = step;
    ft->own = vote;
    ft->frozen = 0;
    if (ft->tl != NULL) lc__ft_broadcast(ft, &m);
    if (ft->poll_step == step) {
        /* The coordinator asked before we got here: what we know now. */
        ft->poll_step = 0;
        ft->frozen = 1;
        lc__ft_coord_report(ft, step, 0, 1);
        if (vote != LC_OK) { /* we know it aborts, and so will it */
            ft->frozen = 0;
            lc__ft_step_eval(ft);
        }
        return;
    }
    lc__ft_step_eval(ft);
}

void lc__ft_step_on_vote(lc_ft_t *ft, int peer, uint32_t epoch, uint64_t step, lc_status_t st)
{
    lc_ft_peer_t *p = &ft->peers[peer];
    int k = (int)(step & 1);

    p->vote_epoch[k] = epoch;
    p->vote_step[k] = step;
    p->vote[k] = st;
    if (step == ft->step) lc__ft_step_eval(ft);
}

void lc__ft_step_on_poll(lc_ft_t *ft, uint64_t step)
{
    int k = (int)(step & 1);

    if (step == ft->done_step[k]) {
        lc__ft_coord_report(ft, step, ft->done_complete[k], 0);
    } else if (step == ft->step) {
        /* Undecided: from now on the coordinator decides. */
        ft->frozen = 1;
        lc__ft_coord_report(ft, step, 0, 1);
    } else if (step > ft->done_step[k] && step > ft->done_step[!k]) {
        ft->poll_step = step; /* answered when we vote */
    }
}

void lc__ft_step_on_outcome(lc_ft_t *ft, uint64_t step, int commit)
{
    if (step != ft->step) return; /* decided here already, the same way */
    lc_info("step %llu %s (settled by the coordinator)", (unsigned long long)step,
            commit ? "committed" : "aborted");
    lc__ft_step_decide(ft, commit, commit);
}
