/*
 * The transports built into this library, found by name (LC_TRANSPORT,
 * lc_comm_params_t::transport). Adding one is a new folder under transport/,
 * that folder in the transport sources of the top-level CMakeLists.txt, and
 * its ops declared and listed here.
 */
#include "core/log.h"
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
        const lc_tl_ops_t *t = lc__transports[i];
        if (name == NULL || strcmp(t->name, name) != 0) continue;
        if (t->abi != LC_TL_ABI) {
            lc_error("transport '%s' was built for interface version %u, not %u", t->name, t->abi,
                     LC_TL_ABI);
            return NULL;
        }
        return t;
    }
    return NULL;
}
