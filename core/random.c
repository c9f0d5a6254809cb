/*
 * Random bytes from the kernel (getrandom), for nonces, job keys and ids.
 */
#include "core/util.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

lc_status_t lc__random_bytes(void *buf, size_t len)
{
    uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            lc_error("getrandom: %s", strerror(errno));
            return LC_ERR_SYSTEM;
        }
        p += n;
        len -= (size_t)n;
    }
    return LC_OK;
}
