/*
 * lc_comm_init_mpi: a communicator whose ranks are an MPI communicator's.
 * Rank 0 makes a fresh job key and job id and broadcasts them over MPI; the
 * transport exchanges addresses through the MPI bootstrap.
 */
#ifdef LC_HAVE_MPI

#include "laconic_mpi.h"
#include "api/comm.h"
#include "core/util.h"
#include "transport/mpi/bootstrap_mpi.h"

#include <stdio.h>
#include <string.h>

lc_status_t lc_comm_init_mpi(MPI_Comm mpi_comm, const lc_comm_params_t *params, lc_comm_t **comm_p)
{
    lc_config_t cfg = *lc__config_get();
    lc_bootstrap_t *bs;
    /* msg[0]: rank 0's success flag; then 32 bytes of key and 8 of job id. */
    uint8_t msg[1 + 40];
    char key[2 * 32 + 1], job[2 * 8 + 1];
    lc_status_t st;

    if (comm_p == NULL) return LC_ERR_INVALID_ARG;
    LC_CHECK(lc__bootstrap_mpi_create(mpi_comm, &bs));
    memset(msg, 0, sizeof(msg));
    if (bs->rank == 0) msg[0] = lc__random_bytes(msg + 1, sizeof(msg) - 1) == LC_OK;
    /* Every rank joins the broadcast, even when rank 0 failed, so none hangs. */
    if (MPI_Bcast(msg, (int)sizeof(msg), MPI_BYTE, 0, mpi_comm) != MPI_SUCCESS || !msg[0]) {
        lc_error("lc_comm_init_mpi: sharing the job key over MPI failed");
        bs->ops->destroy(bs);
        return LC_ERR_SYSTEM;
    }
    for (int i = 0; i < 32; i++) snprintf(key + 2 * i, 3, "%02x", msg[1 + i]);
    for (int i = 0; i < 8; i++) snprintf(job + 2 * i, 3, "%02x", msg[33 + i]);
    if (params != NULL) {
        lc_comm_params_t p = *params;
        p.field_mask &= ~(uint64_t)(LC_COMM_PARAM_FIELD_RANK | LC_COMM_PARAM_FIELD_SIZE |
                                    LC_COMM_PARAM_FIELD_COORD | LC_COMM_PARAM_FIELD_JOB_KEY);
        lc__comm_apply_params(&cfg, &p);
    }
    cfg.rank = bs->rank;
    cfg.world_size = bs->size;
    cfg.job_id = job; /* hashed during create, not kept */
    lc__log_set_rank(cfg.rank);
    st = lc__comm_create(&cfg, bs->rank, bs->size, key, bs, comm_p);
    if (st == LC_OK) (*comm_p)->cfg.job_id = "mpi";
    return st;
}

#endif /* LC_HAVE_MPI */
