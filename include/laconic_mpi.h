/**
 * @file laconic_mpi.h
 * @brief Optional: create a Laconic communicator from an MPI communicator.
 *
 * Available when liblaconic was built with MPI (CMake option LC_WITH_MPI).
 * MPI carries only the start-up exchange (addresses, a fresh job key); the
 * collectives then run over Laconic's own transport.
 */
#ifndef LACONIC_MPI_H
#define LACONIC_MPI_H

#include <mpi.h>

#include "laconic.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief Create a communicator with the ranks and size of @p mpi_comm.
 *
 * Collective over @p mpi_comm. MPI must be initialized. The job key is made
 * by rank 0 and broadcast over @p mpi_comm (LC_JOB_KEY is not needed);
 * LC_COORD is not used.
 *
 * @param mpi_comm The MPI communicator (not retained after the call).
 * @param params Optional parameters; the rank, size, coord and job_key
 *   fields are ignored (they come from MPI).
 * @param comm_p Receives the new communicator.
 * @return ::LC_OK, or as lc_comm_init(); ::LC_ERR_SYSTEM if an MPI call fails.
 */
LC_API lc_status_t lc_comm_init_mpi(MPI_Comm mpi_comm, const lc_comm_params_t *params,
                                    lc_comm_t **comm_p);

#ifdef __cplusplus
}
#endif

#endif /* LACONIC_MPI_H */
