/*
 * Bootstrap over an MPI communicator: the address exchange of transport
 * set-up done with MPI_Allgather instead of the TCP rendezvous.
 */
#ifndef LC_TRANSPORT_MPI_BOOTSTRAP_MPI_H
#define LC_TRANSPORT_MPI_BOOTSTRAP_MPI_H

#include <mpi.h>

#include "transport/bootstrap.h"

/* Duplicates mpi_comm (freed by destroy) so user traffic cannot interfere. */
lc_status_t lc__bootstrap_mpi_create(MPI_Comm mpi_comm, lc_bootstrap_t **bs_p);

#endif
