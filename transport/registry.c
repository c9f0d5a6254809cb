/*
 * The transports built into this library, found by name (LC_TRANSPORT,
 * lc_comm_params_t::transport). Adding one is a new folder under transport/,
 * that folder in the transport sources of the top-level CMakeLists.txt, and
 * its ops declared and listed here.
 */
#include "transport/transport.h"

#include <string.h>

extern const lc_tl_ops_t lc__tl_tcp_ops;

const lc_tl_ops_t *const lc__transports[] = {
    &lc__tl_tcp_ops,
    NULL,
};

const lc_tl_ops_t *lc__tl_find(const char *name)
{
    for (int i = 0; lc__transports[i] != NULL; i++) {
        if (name != NULL && strcmp(lc__transports[i]->name, name) == 0) return lc__transports[i];
    }
    return NULL;
}
