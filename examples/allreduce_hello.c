/*
 * The 20-line use of Laconic: every rank contributes its rank number, the
 * all-reduce sums them, and each rank checks the result. Run with
 *   lcrun -n 4 ./allreduce_hello        or        mpirun -n 4 ./allreduce_hello
 */
#include <laconic.h>
#include <stdio.h>

int main(void)
{
    lc_comm_t *comm;
    int rank, size, bad = 0;
    float data[1000];

    lc_status_t st = lc_comm_init(NULL, &comm); /* LC_RANK, LC_WORLD_SIZE, LC_COORD */
    if (st != LC_OK) {
        fprintf(stderr, "lc_comm_init: %s\n", lc_status_str(st));
        return 1;
    }
    lc_comm_rank(comm, &rank);
    lc_comm_size(comm, &size);
    for (int i = 0; i < 1000; i++) data[i] = (float)(rank + i);

    st = lc_allreduce(data, data, 1000, LC_FLOAT32, LC_SUM, comm, NULL); /* in place */
    for (int i = 0; i < 1000 && st == LC_OK; i++)
        bad += data[i] != (float)(size * (size - 1) / 2 + size * i);
    printf("rank %d of %d: allreduce %s, %d wrong element(s)\n", rank, size, lc_status_str(st),
           bad);

    lc_comm_destroy(comm);
    return st == LC_OK && bad == 0 ? 0 : 1;
}
