"""ctypes declarations of liblaconic's public API (include/laconic.h).

This module is the only place that knows the C ABI: the library's location,
the enums, the structures and every function's prototype. The rest of the
package speaks Python. tests/python/test_package.py (case layout) compares every structure
here, field by field, with what a C program compiled against laconic.h
prints, so the two cannot drift apart unnoticed.

ctypes releases the GIL around every foreign call, so a blocking collective
or lc_wait() on one thread lets the others run.
"""

import ctypes
import ctypes.util
import os

# --- enums (values are part of the C ABI and never change) -----------------

LC_OK = 0
LC_INPROGRESS = 1
LC_ERR_INVALID_ARG = -1
LC_ERR_NO_MEMORY = -2
LC_ERR_UNSUPPORTED = -3
LC_ERR_TIMEOUT = -4
LC_ERR_CORRUPT = -5
LC_ERR_MISMATCH = -6
LC_ERR_SYSTEM = -7
LC_ERR_PEER_LOST = -40
LC_ERR_REVOKED = -41
LC_ERR_TOO_FEW_PEERS = -42
LC_ERR_COORD_LOST = -43
LC_ERR_REJECTED = -44
LC_ERR_REMOVED = -45

DTYPES = {"float32": 0, "float16": 1, "bfloat16": 2, "float64": 3,
          "int32": 4, "int64": 5, "uint8": 6}
OPS = {"sum": 0, "avg": 1, "max": 2, "min": 3, "prod": 4}
ALGOS = {"auto": 0, "ring": 1, "tree": 2, "recdbl": 3, "chain": 4,
         "twophase": 5, "pairwise": 6, "sparse": 7}
EF_SCHEMES = {"off": 0, "on": 1, "worker": 2, "residual": 3, "hops": 4}  # lc_ef_t
CODECS = {"none": 0, "onebit": 1, "topk": 2, "int8": 3, "fp16": 4, "bf16": 5}

LC_UNIQUE_ID_BYTES = 128

LC_COMM_PARAM_FIELD_RANK = 1 << 0
LC_COMM_PARAM_FIELD_SIZE = 1 << 1
LC_COMM_PARAM_FIELD_COORD = 1 << 2
LC_COMM_PARAM_FIELD_JOB_KEY = 1 << 3
LC_COMM_PARAM_FIELD_TIMEOUT_MS = 1 << 4
LC_COMM_PARAM_FIELD_PEER_TIMEOUT_MS = 1 << 5
LC_COMM_PARAM_FIELD_TRANSPORT = 1 << 6
LC_COMM_PARAM_FIELD_STEPS = 1 << 7
LC_COMM_PARAM_FIELD_COORDINATOR = 1 << 8

LC_OP_PARAM_FIELD_ALGO = 1 << 0
LC_OP_PARAM_FIELD_CHUNK_BYTES = 1 << 1
LC_OP_PARAM_FIELD_CODEC = 1 << 2
LC_OP_PARAM_FIELD_CODEC_SPEC = 1 << 3
LC_OP_PARAM_FIELD_TENSOR_KEY = 1 << 4
LC_OP_PARAM_FIELD_ERROR_FEEDBACK = 1 << 5
LC_OP_PARAM_FIELD_FLAGS = 1 << 6
LC_OP_FLAG_RESTORE_INPUT = 1 << 0


# --- structures --------------------------------------------------------------

class lc_unique_id_t(ctypes.Structure):
    _fields_ = [("internal", ctypes.c_char * LC_UNIQUE_ID_BYTES)]


class lc_comm_params_t(ctypes.Structure):
    _fields_ = [("field_mask", ctypes.c_uint64),
                ("rank", ctypes.c_int),
                ("size", ctypes.c_int),
                ("coord", ctypes.c_char_p),
                ("job_key", ctypes.c_char_p),
                ("timeout_ms", ctypes.c_uint32),
                ("peer_timeout_ms", ctypes.c_uint32),
                ("transport", ctypes.c_char_p),
                ("steps", ctypes.c_int),
                ("coordinator", ctypes.c_char_p)]


class lc_op_params_t(ctypes.Structure):
    _fields_ = [("field_mask", ctypes.c_uint64),
                ("algo", ctypes.c_int),            # lc_algo_t
                ("chunk_bytes", ctypes.c_size_t),
                ("codec", ctypes.c_int),           # lc_codec_type_t
                ("codec_spec", ctypes.c_char_p),
                ("tensor_key", ctypes.c_uint64),
                ("error_feedback", ctypes.c_int),
                ("flags", ctypes.c_uint32)]


class lc_op_info_t(ctypes.Structure):
    _fields_ = [("bytes_sent", ctypes.c_uint64),
                ("bytes_received", ctypes.c_uint64),
                ("wire_bytes", ctypes.c_uint64),
                ("ratio", ctypes.c_double),
                ("algo", ctypes.c_int),            # lc_algo_t
                ("elapsed_us", ctypes.c_double),
                ("epoch", ctypes.c_uint32),
                ("seq", ctypes.c_uint64),
                ("codec", ctypes.c_int),           # lc_codec_type_t
                ("encode_us", ctypes.c_double),
                ("decode_us", ctypes.c_double),
                ("wire_us", ctypes.c_double)]


STRUCTS = {"lc_unique_id_t": lc_unique_id_t, "lc_comm_params_t": lc_comm_params_t,
           "lc_op_params_t": lc_op_params_t, "lc_op_info_t": lc_op_info_t}


# --- the library ---------------------------------------------------------------

def _candidates():
    """Where to look for liblaconic, first hit wins: $LACONIC_LIB, the path
    this package was configured with (build tree or install prefix), then
    the dynamic linker's search (ldconfig, LD_LIBRARY_PATH)."""
    env = os.environ.get("LACONIC_LIB")
    if env:
        return [env], True
    found = []
    try:
        from . import _config  # written by CMake next to this file
        found.extend(_config.library_paths(os.path.dirname(os.path.abspath(__file__))))
    except ImportError:
        pass
    name = ctypes.util.find_library("laconic")
    if name:
        found.append(name)
    found.append("liblaconic.so.0")
    return found, False


def _load():
    paths, explicit = _candidates()
    errors = []
    for p in paths:
        try:
            return ctypes.CDLL(p), p
        except OSError as e:
            errors.append("%s: %s" % (p, e))
            if explicit:
                break
    raise ImportError("laconic: cannot load liblaconic (set LACONIC_LIB to its path): "
                      + "; ".join(errors))


lib, lib_path = _load()

_c = ctypes
_status = _c.c_int
_comm_p = _c.c_void_p
_req_p = _c.c_void_p
_size_p = _c.POINTER(_c.c_size_t)
_opp = _c.POINTER(lc_op_params_t)


def _proto(name, restype, *argtypes):
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


lc_status_str = _proto("lc_status_str", _c.c_char_p, _status)
lc_algo_str = _proto("lc_algo_str", _c.c_char_p, _c.c_int)
lc_dtype_size = _proto("lc_dtype_size", _c.c_size_t, _c.c_int)
lc_comm_init = _proto("lc_comm_init", _status, _c.POINTER(lc_comm_params_t),
                      _c.POINTER(_comm_p))
lc_get_unique_id = _proto("lc_get_unique_id", _status, _c.POINTER(lc_unique_id_t))
lc_comm_init_rank = _proto("lc_comm_init_rank", _status, _c.c_int,
                           _c.POINTER(lc_unique_id_t), _c.c_int, _c.POINTER(_comm_p))
lc_comm_init_rank_params = _proto("lc_comm_init_rank_params", _status, _c.c_int,
                                  _c.POINTER(lc_unique_id_t), _c.c_int,
                                  _c.POINTER(lc_comm_params_t), _c.POINTER(_comm_p))
lc_comm_destroy = _proto("lc_comm_destroy", _status, _comm_p)
lc_comm_rank = _proto("lc_comm_rank", _status, _comm_p, _c.POINTER(_c.c_int))
lc_comm_size = _proto("lc_comm_size", _status, _comm_p, _c.POINTER(_c.c_int))
lc_tensor_release = _proto("lc_tensor_release", _status, _comm_p, _c.c_uint64)

_vp = _c.c_void_p
_sz = _c.c_size_t
_i = _c.c_int
_rp = _c.POINTER(_req_p)
lc_allreduce = _proto("lc_allreduce", _status, _vp, _vp, _sz, _i, _i, _comm_p, _opp)
lc_iallreduce = _proto("lc_iallreduce", _status, _vp, _vp, _sz, _i, _i, _comm_p, _opp, _rp)
lc_broadcast = _proto("lc_broadcast", _status, _vp, _sz, _i, _i, _comm_p, _opp)
lc_ibroadcast = _proto("lc_ibroadcast", _status, _vp, _sz, _i, _i, _comm_p, _opp, _rp)
lc_allgather = _proto("lc_allgather", _status, _vp, _vp, _sz, _i, _comm_p, _opp)
lc_iallgather = _proto("lc_iallgather", _status, _vp, _vp, _sz, _i, _comm_p, _opp, _rp)
lc_reduce_scatter = _proto("lc_reduce_scatter", _status, _vp, _vp, _sz, _i, _i, _comm_p, _opp)
lc_ireduce_scatter = _proto("lc_ireduce_scatter", _status, _vp, _vp, _sz, _i, _i, _comm_p,
                            _opp, _rp)
lc_alltoall = _proto("lc_alltoall", _status, _vp, _vp, _sz, _i, _comm_p, _opp)
lc_ialltoall = _proto("lc_ialltoall", _status, _vp, _vp, _sz, _i, _comm_p, _opp, _rp)
lc_alltoallv = _proto("lc_alltoallv", _status, _vp, _size_p, _size_p, _vp, _size_p, _size_p,
                      _i, _comm_p, _opp)
lc_ialltoallv = _proto("lc_ialltoallv", _status, _vp, _size_p, _size_p, _vp, _size_p, _size_p,
                       _i, _comm_p, _opp, _rp)
lc_barrier = _proto("lc_barrier", _status, _comm_p)
lc_ibarrier = _proto("lc_ibarrier", _status, _comm_p, _rp)
lc_wait = _proto("lc_wait", _status, _req_p, _c.POINTER(lc_op_info_t))
lc_test = _proto("lc_test", _status, _req_p, _c.POINTER(lc_op_info_t))
lc_request_free = _proto("lc_request_free", None, _req_p)


def status_str(status):
    """The library's text for a status code."""
    return lc_status_str(status).decode()
