"""Zero-copy views of torch tensors and NumPy arrays as (pointer, count, dtype).

A collective hands the C library the memory of the caller's tensor or array
itself, never a copy: the buffer must be on the CPU, contiguous (C order)
and of a datatype the library reduces. Anything else is refused with a
``TypeError`` (not a tensor or array, an unsupported dtype, another device)
or a ``ValueError`` (non-contiguous, read-only output, a size that does not
fit the collective), so that nothing is ever silently copied or written
past its end. Neither torch nor NumPy is imported here: a buffer is
recognised by the modules the caller already loaded.
"""

import sys

from . import _capi

_TORCH_DTYPES = {"torch.float32": "float32", "torch.float16": "float16",
                 "torch.bfloat16": "bfloat16", "torch.float64": "float64",
                 "torch.int32": "int32", "torch.int64": "int64", "torch.uint8": "uint8"}
_NUMPY_DTYPES = {"float32": "float32", "float16": "float16", "float64": "float64",
                 "int32": "int32", "int64": "int64", "uint8": "uint8"}


_DTYPE_IDS = _capi.DTYPES


class Buffer:
    """One buffer as the C call sees it. ``obj`` is the caller's object, kept
    so that a non-blocking call holds it alive until the request ends."""

    __slots__ = ("obj", "ptr", "count", "dtype", "dtype_name")

    def __init__(self, obj, ptr, count, dtype_name):
        self.obj = obj
        self.ptr = ptr
        self.count = count
        self.dtype_name = dtype_name
        self.dtype = _DTYPE_IDS[dtype_name]


def _dtype_name(table, key, shown, what):
    """Our name of a dtype (its key in ``table``), or a TypeError naming it."""
    name = table.get(key)
    if name is None:
        raise TypeError("laconic: %s has dtype %s; supported: %s"
                        % (what, shown, ", ".join(sorted(table))))
    return name


def _torch_buffer(t, what, writable, torch):
    name = _torch_names.get(t.dtype)
    if name is None:
        name = _torch_names[t.dtype] = _dtype_name(_TORCH_DTYPES, str(t.dtype), t.dtype, what)
    if not t.is_cpu:
        raise TypeError("laconic: %s is on %s; only CPU tensors are supported" % (what, t.device))
    if t.layout is not torch.strided:
        raise TypeError("laconic: %s has layout %s; pass a dense (strided) tensor"
                        % (what, t.layout))
    if not t.is_contiguous():
        raise ValueError("laconic: %s is not contiguous (call .contiguous() and pass the copy)"
                         % what)
    return Buffer(t, t.data_ptr(), t.numel(), name)


def _numpy_buffer(a, what, writable, np):
    name = _numpy_names.get(a.dtype)
    if name is None:
        key = a.dtype.name if a.dtype.isnative else "non-native " + a.dtype.str
        name = _numpy_names[a.dtype] = _dtype_name(_NUMPY_DTYPES, key, a.dtype, what)
    # One look at the array interface: strides None means C-contiguous, and
    # data is (address, read-only).
    ai = a.__array_interface__
    if ai["strides"] is not None and not a.flags.c_contiguous:
        raise ValueError("laconic: %s is not C-contiguous (np.ascontiguousarray gives a copy)"
                         % what)
    ptr, readonly = ai["data"]
    if writable and readonly:
        raise ValueError("laconic: %s is read-only and the collective writes into it" % what)
    return Buffer(a, ptr, a.size, name)


# Checked dtypes (dtype object -> our name) and the handler of each buffer
# type met so far: an 8-byte all-reduce is a few microseconds of Python,
# and the lookups by name and isinstance were most of them.
_torch_names = {}
_numpy_names = {}
_handlers = {}


def _handler(obj):
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(obj, torch.Tensor):
        return _torch_buffer, torch
    np = sys.modules.get("numpy")
    if np is not None and isinstance(obj, np.ndarray):
        return _numpy_buffer, np
    return None


def as_buffer(obj, what, writable=False):
    """The C view of ``obj`` (a CPU torch tensor or a NumPy array)."""
    h = _handlers.get(type(obj))
    if h is None:
        h = _handler(obj)
        if h is None:
            raise TypeError("laconic: %s must be a torch.Tensor or numpy.ndarray, not %s"
                            % (what, type(obj).__name__))
        _handlers[type(obj)] = h
    return h[0](obj, what, writable, h[1])


def same_kind(a, b, what):
    """Raise unless two buffers have one dtype."""
    if a.dtype != b.dtype:
        raise TypeError("laconic: %s: dtypes differ (%s and %s)" % (what, a.dtype_name,
                                                                    b.dtype_name))


def check_count(buf, expected, what):
    """Raise unless ``buf`` holds exactly ``expected`` elements."""
    if buf.count != expected:
        raise ValueError("laconic: %s holds %d elements, the collective needs %d"
                         % (what, buf.count, expected))


# Element sizes as the library has them, asked once.
DTYPE_SIZES = {name: _capi.lc_dtype_size(i) for name, i in _capi.DTYPES.items()}


def overlaps(a, b):
    """Whether two buffers share any byte."""
    if a.count == 0 or b.count == 0:
        return False
    return (a.ptr < b.ptr + b.count * DTYPE_SIZES[b.dtype_name]
            and b.ptr < a.ptr + a.count * DTYPE_SIZES[a.dtype_name])
