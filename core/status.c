/*
 * Static strings for status codes and datatype sizes: the small pieces of
 * the public API that need no communicator.
 */
#include "core/util.h"
#include "laconic.h"

#include <stdint.h>

const char *lc_status_str(lc_status_t status)
{
    switch (status) {
    case LC_OK: return "success";
    case LC_INPROGRESS: return "operation in progress";
    case LC_ERR_INVALID_ARG: return "invalid argument";
    case LC_ERR_NO_MEMORY: return "out of memory";
    case LC_ERR_UNSUPPORTED: return "unsupported";
    case LC_ERR_TIMEOUT: return "timed out";
    case LC_ERR_CORRUPT: return "corrupt frame or payload";
    case LC_ERR_MISMATCH: return "ranks disagree on the collective's arguments";
    case LC_ERR_SYSTEM: return "system call failed";
    case LC_ERR_PEER_LOST: return "peer lost";
    case LC_ERR_REVOKED: return "communicator revoked";
    case LC_ERR_TOO_FEW_PEERS: return "too few peers";
    case LC_ERR_COORD_LOST: return "coordinator unreachable";
    case LC_ERR_REJECTED: return "rejected";
    case LC_ERR_REMOVED: return "removed from the communicator's view";
    }
    return "unknown status";
}

int lc__status_is_error(lc_status_t status)
{
    /* Every error code has its string: one list to keep, the switch above. */
    return status < 0 && lc_status_str(status) != lc_status_str((lc_status_t)INT32_MIN);
}

size_t lc_dtype_size(lc_dtype_t dtype)
{
    switch (dtype) {
    case LC_FLOAT32: return 4;
    case LC_FLOAT16: return 2;
    case LC_BFLOAT16: return 2;
    case LC_FLOAT64: return 8;
    case LC_INT32: return 4;
    case LC_INT64: return 8;
    case LC_UINT8: return 1;
    case LC_DTYPE_COUNT: break;
    }
    return 0;
}
