/*
 * MPI bootstrap: allgather is MPI_Allgather on a private duplicate of the
 * user's communicator. MPI is trusted to deliver the right bytes, so there
 * is no authentication at this step; the connections the transport opens
 * afterwards are still authenticated with the job key.
 */
#include "transport/mpi/bootstrap_mpi.h"
#include "core/util.h"

#include <limits.h>
#include <stdlib.h>

typedef struct {
    lc_bootstrap_t super;
    MPI_Comm comm;
} lc_bootstrap_mpi_t;

static lc_status_t lc__bootstrap_mpi_allgather(lc_bootstrap_t *bs, const void *mine, size_t len,
                                               void *out)
{
    lc_bootstrap_mpi_t *b = (lc_bootstrap_mpi_t *)bs;
    int rc;

    if (len > INT_MAX) return LC_ERR_INVALID_ARG;
    rc = MPI_Allgather(mine, (int)len, MPI_BYTE, out, (int)len, MPI_BYTE, b->comm);
    if (rc != MPI_SUCCESS) {
        lc_error("MPI_Allgather failed (error %d)", rc);
        return LC_ERR_SYSTEM;
    }
    return LC_OK;
}

static void lc__bootstrap_mpi_destroy(lc_bootstrap_t *bs)
{
    lc_bootstrap_mpi_t *b = (lc_bootstrap_mpi_t *)bs;

    MPI_Comm_free(&b->comm);
    free(b);
}

static const lc_bootstrap_ops_t lc__bootstrap_mpi_ops = {
    .allgather = lc__bootstrap_mpi_allgather,
    .destroy = lc__bootstrap_mpi_destroy,
};

lc_status_t lc__bootstrap_mpi_create(MPI_Comm mpi_comm, lc_bootstrap_t **bs_p)
{
    lc_bootstrap_mpi_t *b = calloc(1, sizeof(*b));
    int initialized = 0;

    if (b == NULL) return LC_ERR_NO_MEMORY;
    MPI_Initialized(&initialized);
    if (!initialized) {
        lc_error("lc_comm_init_mpi: MPI is not initialized");
        free(b);
        return LC_ERR_INVALID_ARG;
    }
    if (MPI_Comm_dup(mpi_comm, &b->comm) != MPI_SUCCESS) {
        lc_error("MPI_Comm_dup failed");
        free(b);
        return LC_ERR_SYSTEM;
    }
    MPI_Comm_rank(b->comm, &b->super.rank);
    MPI_Comm_size(b->comm, &b->super.size);
    b->super.ops = &lc__bootstrap_mpi_ops;
    *bs_p = &b->super;
    return LC_OK;
}
