"""Communicator and Request: the C API's collectives on tensors and arrays.

Every collective takes CPU torch tensors or NumPy arrays and hands their
memory to liblaconic as it is (see _buffer.py). Blocking calls are the C
blocking calls: the GIL is released while they run, and the library runs
its progress engine on the caller's thread when it is free, which is what
keeps an 8-byte all-reduce through Python close to the C call.

``async_op=True`` returns a :class:`Request`. The communicator's completion
thread (started on the first non-blocking call) waits for requests in the
order they were started, which is the order they complete in (collectives
on one communicator run one at a time, in call order), frees each C request
and then marks the Python one done: its ``wait()`` returns, its ``info``
is filled and its ``torch.futures.Future`` completes, off the caller's
thread, so a DDP hook's future completes while backward goes on. A request
holds its buffers (and the arrays of counts of an all-to-all-v) until it
has ended, whatever the caller drops.
"""

import atexit
import ctypes
import hashlib
import itertools
import queue
import sys
import threading
import weakref

from . import _capi
from ._buffer import DTYPE_SIZES, as_buffer, check_count, overlaps, same_kind
from .errors import RevokedError, check, error_for

_ALGO_NAMES = {v: k for k, v in _capi.ALGOS.items()}
_CODEC_NAMES = {v: k for k, v in _capi.CODECS.items()}


def tensor_key(key):
    """The 64-bit tensor key for ``key``: an int in [0, 2**64) is used as it
    is; a str or bytes is hashed (the first 8 bytes of its BLAKE2b digest,
    the same on every rank and every run, unlike Python's ``hash``)."""
    if isinstance(key, bool):
        raise TypeError("laconic: key must be an int, str or bytes, not bool")
    if isinstance(key, int):
        if not 0 <= key < 1 << 64:
            raise ValueError("laconic: key %d is outside [0, 2**64)" % key)
        return key
    if isinstance(key, str):
        key = key.encode()
    if isinstance(key, (bytes, bytearray)):
        return int.from_bytes(hashlib.blake2b(bytes(key), digest_size=8).digest(), "little")
    raise TypeError("laconic: key must be an int, str or bytes, not %s" % type(key).__name__)


class OpInfo:
    """What a finished collective did (the C ``lc_op_info_t``): bytes sent,
    received and on the wire (with frame headers), the compression ratio,
    the algorithm and codec that ran (by name), its elapsed, encode, decode
    and in-flight times in microseconds, the membership epoch and the
    collective's sequence number."""

    __slots__ = ("bytes_sent", "bytes_received", "wire_bytes", "ratio", "algo", "elapsed_us",
                 "epoch", "seq", "codec", "encode_us", "decode_us", "wire_us")

    def __init__(self, c):
        for name, _ in _capi.lc_op_info_t._fields_:
            setattr(self, name, getattr(c, name))
        self.algo = _ALGO_NAMES.get(c.algo, str(c.algo))
        self.codec = _CODEC_NAMES.get(c.codec, str(c.codec))

    def as_dict(self):
        """The fields as a dict (for JSON)."""
        return {k: getattr(self, k) for k in self.__slots__}

    def __repr__(self):
        return "OpInfo(%s)" % ", ".join("%s=%r" % (k, getattr(self, k)) for k in self.__slots__)


class Request:
    """A non-blocking collective. ``wait()`` returns its :class:`OpInfo` or
    raises its error; ``is_completed()`` does not block; ``result`` is the
    output (tensor or array, None for a barrier); ``get_future()`` gives a
    ``torch.futures.Future`` completed with ``result`` or the error."""

    def __init__(self, comm, what, handle, result, keep):
        self._comm = comm          # the communicator outlives its requests
        self._what = what
        self._handle = handle
        self._keep = keep          # buffers, count arrays, params: alive until done
        self.result = result
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._future = None
        self._error = None
        self._info = None

    def _finish(self, status, cinfo):
        """Called once by the completion thread after lc_wait()."""
        err = error_for(status, self._what) if status != _capi.LC_OK else None
        with self._lock:
            self._info = OpInfo(cinfo) if err is None else None
            self._error = err
            self._keep = None
            self._handle = None
            self._comm = None
            fut = self._future
            self._done.set()
        if fut is not None:
            self._complete(fut)

    def _complete(self, fut):
        try:
            if self._error is not None:
                fut.set_exception(self._error)
            else:
                fut.set_result(self.result)
        except RuntimeError:  # the caller completed the future itself: theirs stands
            pass

    def wait(self, timeout=None):
        """Block until the collective ends and return its :class:`OpInfo`;
        raise its error (a :class:`~laconic.errors.LaconicError`). It ends
        within the communicator's timeouts; ``timeout`` (seconds) bounds
        this wait alone and raises the built-in ``TimeoutError`` when it
        passes first."""
        if not self._done.wait(timeout):
            raise TimeoutError("laconic: %s still running after %s s" % (self._what, timeout))
        if self._error is not None:
            raise self._error
        return self._info

    def is_completed(self):
        """True once the collective has ended (successfully or not)."""
        return self._done.is_set()

    @property
    def info(self):
        """The :class:`OpInfo` once completed successfully, else None."""
        return self._info

    @property
    def exception(self):
        """The error once failed, else None."""
        return self._error

    def get_future(self):
        """A ``torch.futures.Future`` completed with ``result`` (or the
        error) when the collective ends. The same future on every call."""
        import torch.futures

        with self._lock:
            if self._future is None:
                self._future = torch.futures.Future()
                if self._done.is_set():
                    self._complete(self._future)
            return self._future

    def __repr__(self):
        state = "done" if self._done.is_set() else "running"
        return "<laconic.Request %s %s>" % (self._what, state)


_STOP = object()


def _completion_loop(q):
    """The completion thread: FIFO lc_wait on every request queued to ``q``.
    Every request is freed and marked done, whatever a callback does."""
    info = _capi.lc_op_info_t()
    while True:
        req = q.get()
        if req is _STOP:
            return
        st = _capi.lc_wait(req._handle, ctypes.byref(info))
        _capi.lc_request_free(req._handle)
        try:
            req._finish(st, info)
        except BaseException:  # noqa: BLE001 (a future's callback raised: report, go on)
            sys.excepthook(*sys.exc_info())
            req._done.set()
        req = None  # hold no finished request (nor its communicator) while idle


_live = weakref.WeakSet()
_store_seq = itertools.count()


class Communicator:
    """A group of ranks and the connections between them (``lc_comm_t``).

    ``Communicator()`` takes everything from the environment as
    ``lc_comm_init`` does (``LC_RANK``, ``LC_WORLD_SIZE``, ``LC_COORD``,
    ``LC_JOB_KEY``, or Open MPI's variables under ``mpirun``; ``lcrun``
    sets them). Keyword arguments override the environment. With
    ``unique_id`` (made by :func:`Communicator.unique_id` on one rank and
    passed to all), ``rank`` and ``size`` are required and the rendezvous is
    the one the id names. :meth:`from_store` builds one from a
    ``torch.distributed`` store, so ``torchrun`` alone starts it.

    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(self, rank=None, size=None, *, coord=None, job_key=None, timeout_ms=None,
                 peer_timeout_ms=None, transport=None, unique_id=None):
        self._handle = None
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._busy = 0          # calls into the C library in progress on any thread
        self._closing = False
        self._queue = None
        self._thread = None
        h = _capi._comm_p()
        p = _capi.lc_comm_params_t()
        self._params_keep = []
        if unique_id is not None:
            if rank is None or size is None:
                raise ValueError("laconic: a unique id needs rank and size")
            if coord is not None or job_key is not None:
                raise ValueError("laconic: coord and job_key come from the unique id")
            raw = bytes(unique_id)
            if len(raw) != _capi.LC_UNIQUE_ID_BYTES:
                raise ValueError("laconic: a unique id is %d bytes, not %d"
                                 % (_capi.LC_UNIQUE_ID_BYTES, len(raw)))
            uid = _capi.lc_unique_id_t()
            ctypes.memmove(ctypes.addressof(uid), raw, len(raw))
            self._set_params(p, timeout_ms=timeout_ms, peer_timeout_ms=peer_timeout_ms,
                             transport=transport)
            check(_capi.lc_comm_init_rank_params(int(size), ctypes.byref(uid), int(rank),
                                                 ctypes.byref(p), ctypes.byref(h)),
                  "lc_comm_init_rank_params")
        else:
            self._set_params(p, rank=rank, size=size, coord=coord, job_key=job_key,
                             timeout_ms=timeout_ms, peer_timeout_ms=peer_timeout_ms,
                             transport=transport)
            check(_capi.lc_comm_init(ctypes.byref(p), ctypes.byref(h)), "lc_comm_init")
        self._handle = h.value
        r, s = ctypes.c_int(), ctypes.c_int()
        check(_capi.lc_comm_rank(self._handle, ctypes.byref(r)), "lc_comm_rank")
        check(_capi.lc_comm_size(self._handle, ctypes.byref(s)), "lc_comm_size")
        self.rank, self.size = r.value, s.value
        _live.add(self)

    _FIELDS = {"rank": _capi.LC_COMM_PARAM_FIELD_RANK, "size": _capi.LC_COMM_PARAM_FIELD_SIZE,
               "coord": _capi.LC_COMM_PARAM_FIELD_COORD,
               "job_key": _capi.LC_COMM_PARAM_FIELD_JOB_KEY,
               "timeout_ms": _capi.LC_COMM_PARAM_FIELD_TIMEOUT_MS,
               "peer_timeout_ms": _capi.LC_COMM_PARAM_FIELD_PEER_TIMEOUT_MS,
               "transport": _capi.LC_COMM_PARAM_FIELD_TRANSPORT}

    def _set_params(self, p, **values):
        """Fill ``lc_comm_params_t`` from the values given (None: unset)."""
        for name, value in values.items():
            if value is None:
                continue
            if isinstance(value, str):
                value = value.encode()
                self._params_keep.append(value)  # ctypes keeps only the pointer
            else:
                value = int(value)
            setattr(p, name, value)
            p.field_mask |= self._FIELDS[name]

    @staticmethod
    def unique_id():
        """Make a unique id (on one rank only): 128 opaque bytes naming a
        rendezvous served by this process, to pass to every rank's
        ``Communicator(unique_id=..., rank=..., size=...)``. It holds the
        job's key: treat it as a secret."""
        uid = _capi.lc_unique_id_t()
        check(_capi.lc_get_unique_id(ctypes.byref(uid)), "lc_get_unique_id")
        return ctypes.string_at(ctypes.addressof(uid), ctypes.sizeof(uid))

    @classmethod
    def from_store(cls, store, rank, size, prefix=None, **kwargs):
        """A communicator whose rendezvous is agreed through a key-value
        store with ``set(key, bytes)`` and a blocking ``get(key)`` (a
        ``torch.distributed`` TCPStore, FileStore or PrefixStore): rank 0
        makes a unique id and publishes it under ``prefix``, every other
        rank reads it. Every rank must make its store communicators in the
        same order (the default prefix counts them)."""
        if prefix is None:
            prefix = "laconic/comm/%d" % next(_store_seq)
        key = prefix + "/unique_id"
        if int(rank) == 0:
            uid = cls.unique_id()
            store.set(key, uid)
        else:
            uid = store.get(key)
        return cls(rank, size, unique_id=uid, **kwargs)

    # --- life cycle ----------------------------------------------------------

    def close(self, abort=False):
        """Destroy the communicator; peers see this rank leave. Idempotent.
        By default the requests still running are waited for first (each
        ends within the communicator's timeouts); with ``abort`` (and at
        interpreter exit) they are revoked at once and fail with
        :class:`~laconic.RevokedError`. A blocking call running on another
        thread is always let finish first: it is using the communicator."""
        with self._lock:
            if self._handle is None or self._closing:
                return
            self._closing = True  # no new call starts from here on
            while self._busy:
                self._idle.wait()
            h = self._handle
            t, self._thread = self._thread, None
            q = self._queue
        if abort:
            _capi.lc_comm_destroy(h)  # in-flight requests fail with LC_ERR_REVOKED
        if t is not None:
            q.put(_STOP)
            if t is not threading.current_thread():  # close() from a future's callback
                t.join()
        if not abort:
            _capi.lc_comm_destroy(h)
        with self._lock:
            self._handle = None
        _live.discard(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_handle", None) is not None and sys.meta_path is not None:
            self.close()

    @property
    def closed(self):
        """True after :meth:`close`."""
        return self._handle is None

    def _enter(self):
        """The handle, counted as in use until _leave(); raises once closing.
        (Plain lock calls: this is on every collective's path.)"""
        lock = self._lock
        lock.acquire()
        if self._closing or self._handle is None:
            lock.release()
            raise RevokedError("laconic: the communicator is closed")
        self._busy += 1
        lock.release()
        return self._handle

    def _leave(self):
        lock = self._lock
        lock.acquire()
        self._busy -= 1
        if self._closing and not self._busy:
            self._idle.notify_all()
        lock.release()

    def __repr__(self):
        return "<laconic.Communicator rank %d of %d%s>" % (self.rank, self.size,
                                                          " closed" if self.closed else "")

    # --- parameters ------------------------------------------------------------

    @staticmethod
    def _op_params(codec, key, error_feedback, algo, chunk_bytes):
        if codec is None and key is None and error_feedback is None and algo is None \
                and chunk_bytes is None:
            return None
        p = _capi.lc_op_params_t()
        if codec is not None:
            if not isinstance(codec, str):
                raise TypeError("laconic: codec must be a spec string such as 'onebit', "
                                "'topk:0.01' or 'int8+zstd'")
            p.codec_spec = codec.encode()
            p.field_mask |= _capi.LC_OP_PARAM_FIELD_CODEC_SPEC
        if key is not None:
            p.tensor_key = tensor_key(key)
            p.field_mask |= _capi.LC_OP_PARAM_FIELD_TENSOR_KEY
        if error_feedback is not None:
            if isinstance(error_feedback, str):
                ef = _capi.EF_SCHEMES.get(error_feedback.lower())
                if ef is None:
                    raise ValueError("laconic: unknown error_feedback %r; True, False or one of %s"
                                     % (error_feedback, ", ".join(_capi.EF_SCHEMES)))
            else:
                ef = 1 if error_feedback else 0
            p.error_feedback = ef
            p.field_mask |= _capi.LC_OP_PARAM_FIELD_ERROR_FEEDBACK
        if algo is not None:
            a = _capi.ALGOS.get(str(algo).lower())
            if a is None:
                raise ValueError("laconic: unknown algo %r; one of %s"
                                 % (algo, ", ".join(_capi.ALGOS)))
            p.algo = a
            p.field_mask |= _capi.LC_OP_PARAM_FIELD_ALGO
        if chunk_bytes is not None:
            p.chunk_bytes = int(chunk_bytes)
            p.field_mask |= _capi.LC_OP_PARAM_FIELD_CHUNK_BYTES
        return p

    @staticmethod
    def _op(op):
        o = _capi.OPS.get(op)
        if o is not None:
            return o
        o = _capi.OPS.get(str(op).lower())
        if o is None:
            raise ValueError("laconic: unknown op %r; one of %s" % (op, ", ".join(_capi.OPS)))
        return o

    def _run(self, what, fn, ifn, args, params, result, keep, async_op, takes_params=True):
        """Call the C collective ``fn(*args, comm[, params])``, or ``ifn``
        with a request pointer after them and return a Request."""
        tail = (ctypes.byref(params) if params is not None else None,) if takes_params else ()
        h = self._enter()
        try:
            if not async_op:
                check(fn(*args, h, *tail), what)
                return result
            req = _capi._req_p()
            check(ifn(*args, h, *tail, ctypes.byref(req)), what)
            r = Request(self, what, req.value, result, (keep, params))
            self._enqueue(r)
            return r
        finally:
            self._leave()

    def _enqueue(self, r):
        with self._lock:  # the caller holds a busy count: close() cannot be past its wait
            if self._thread is None:
                self._queue = queue.SimpleQueue()
                self._thread = threading.Thread(target=_completion_loop, args=(self._queue,),
                                                name="laconic-completion", daemon=True)
                self._thread.start()
            self._queue.put(r)

    # --- collectives -------------------------------------------------------------

    def allreduce(self, send, recv=None, op="sum", *, codec=None, key=None, error_feedback=None,
                  algo=None, chunk_bytes=None, async_op=False):
        """Reduce ``send`` across ranks into ``recv`` (in place into ``send``
        when ``recv`` is None); every rank gets the same bytes. ``op``: sum,
        avg, max, min or prod. ``codec`` ("onebit", "topk:0.01", "int8",
        "bf16", "fp16", any of them "+zstd") compresses float32 sums and
        averages; ``key`` (int or str) names the tensor whose error-feedback
        residual the communicator keeps between calls; ``error_feedback``
        turns that off (False) or names a scheme ("worker", "residual",
        "hops": the C ``lc_ef_t``; True is the codec's default); ``algo``
        forces an algorithm. Returns ``recv`` (or a :class:`Request` with
        ``async_op``)."""
        sb = as_buffer(send, "send", writable=recv is None)
        rb = sb if recv is None else as_buffer(recv, "recv", writable=True)
        if rb is not sb:
            if rb.dtype != sb.dtype or rb.count != sb.count:
                same_kind(sb, rb, "allreduce")
                check_count(rb, sb.count, "recv")
            if rb.ptr != sb.ptr and overlaps(sb, rb):
                raise ValueError("laconic: allreduce: send and recv overlap without being equal")
        p = self._op_params(codec, key, error_feedback, algo, chunk_bytes)
        args = (sb.ptr, rb.ptr, sb.count, sb.dtype, self._op(op))
        return self._run("allreduce", _capi.lc_allreduce, _capi.lc_iallreduce, args, p,
                         rb.obj, (sb, rb), async_op)

    def broadcast(self, buf, root=0, *, codec=None, key=None, error_feedback=None, algo=None,
                  chunk_bytes=None, async_op=False):
        """Copy ``buf`` on ``root`` into ``buf`` on every rank. Returns ``buf``."""
        b = as_buffer(buf, "buf", writable=True)
        if not 0 <= int(root) < self.size:
            raise ValueError("laconic: root %d is not a rank of %d" % (root, self.size))
        p = self._op_params(codec, key, error_feedback, algo, chunk_bytes)
        args = (b.ptr, b.count, b.dtype, int(root))
        return self._run("broadcast", _capi.lc_broadcast, _capi.lc_ibroadcast, args, p, b.obj,
                         (b,), async_op)

    def _check_own_block(self, whole, block, what):
        """In place, ``block`` may be this rank's block of ``whole``; any
        other overlap of the two is refused."""
        esz = DTYPE_SIZES[whole.dtype_name]
        if overlaps(whole, block) and block.ptr != whole.ptr + self.rank * block.count * esz:
            raise ValueError("laconic: %s: the buffers overlap other than as this rank's block"
                             % what)

    def allgather(self, send, recv, *, codec=None, key=None, error_feedback=None, algo=None,
                  chunk_bytes=None, async_op=False):
        """Gather every rank's ``send`` into ``recv`` (size x len(send)
        elements, rank r's block at r x len(send)). Returns ``recv``."""
        sb = as_buffer(send, "send")
        rb = as_buffer(recv, "recv", writable=True)
        same_kind(sb, rb, "allgather")
        check_count(rb, sb.count * self.size, "recv")
        self._check_own_block(rb, sb, "allgather")
        p = self._op_params(codec, key, error_feedback, algo, chunk_bytes)
        args = (sb.ptr, rb.ptr, sb.count, sb.dtype)
        return self._run("allgather", _capi.lc_allgather, _capi.lc_iallgather, args, p, rb.obj,
                         (sb, rb), async_op)

    def reduce_scatter(self, send, recv, op="sum", *, algo=None, chunk_bytes=None,
                       async_op=False):
        """Reduce ``send`` (size x len(recv) elements) across ranks; rank r
        gets block r in ``recv``. Returns ``recv``."""
        sb = as_buffer(send, "send")
        rb = as_buffer(recv, "recv", writable=True)
        same_kind(sb, rb, "reduce_scatter")
        check_count(sb, rb.count * self.size, "send")
        self._check_own_block(sb, rb, "reduce_scatter")
        p = self._op_params(None, None, None, algo, chunk_bytes)
        args = (sb.ptr, rb.ptr, rb.count, sb.dtype, self._op(op))
        return self._run("reduce_scatter", _capi.lc_reduce_scatter, _capi.lc_ireduce_scatter,
                         args, p, rb.obj, (sb, rb), async_op)

    def alltoall(self, send, recv, *, codec=None, key=None, error_feedback=None, algo=None,
                 chunk_bytes=None, async_op=False):
        """Block d of ``send`` goes to rank d, where it lands as block r of
        ``recv`` (r the sender); both hold size equal blocks. Returns ``recv``."""
        sb = as_buffer(send, "send")
        rb = as_buffer(recv, "recv", writable=True)
        same_kind(sb, rb, "alltoall")
        check_count(rb, sb.count, "recv")
        if sb.count % self.size:
            raise ValueError("laconic: alltoall: %d elements do not split into %d blocks"
                             % (sb.count, self.size))
        if overlaps(sb, rb):
            raise ValueError("laconic: alltoall: send and recv must not overlap")
        p = self._op_params(codec, key, error_feedback, algo, chunk_bytes)
        args = (sb.ptr, rb.ptr, sb.count // self.size, sb.dtype)
        return self._run("alltoall", _capi.lc_alltoall, _capi.lc_ialltoall, args, p, rb.obj,
                         (sb, rb), async_op)

    def _counts(self, values, what):
        vals = [int(v) for v in values]
        if len(vals) != self.size:
            raise ValueError("laconic: %s has %d entries, not one per rank (%d)"
                             % (what, len(vals), self.size))
        if any(v < 0 for v in vals):
            raise ValueError("laconic: %s has a negative entry" % what)
        return (ctypes.c_size_t * self.size)(*vals)

    @staticmethod
    def _displs(counts):
        out, at = [], 0
        for c in counts:
            out.append(at)
            at += c
        return out

    def alltoallv(self, send, send_counts, recv, recv_counts, send_displs=None,
                  recv_displs=None, *, codec=None, key=None, error_feedback=None, algo=None,
                  chunk_bytes=None, async_op=False):
        """All-to-all with a count per rank (``MPI_Alltoallv``), in elements:
        ``send_counts[d]`` elements from ``send_displs[d]`` go to rank d,
        ``recv_counts[r]`` from rank r land at ``recv_displs[r]``.
        Displacements default to the blocks packed in rank order. Returns
        ``recv``."""
        sb = as_buffer(send, "send")
        rb = as_buffer(recv, "recv", writable=True)
        same_kind(sb, rb, "alltoallv")
        sc = self._counts(send_counts, "send_counts")
        rc = self._counts(recv_counts, "recv_counts")
        sd = self._counts(self._displs(sc) if send_displs is None else send_displs, "send_displs")
        rd = self._counts(self._displs(rc) if recv_displs is None else recv_displs, "recv_displs")
        for cnt, dis, b, what in ((sc, sd, sb, "send"), (rc, rd, rb, "recv")):
            for i in range(self.size):
                if cnt[i] and dis[i] + cnt[i] > b.count:
                    raise ValueError("laconic: alltoallv: %s block %d ends at element %d, past "
                                     "the %d of %s" % (what, i, dis[i] + cnt[i], b.count, what))
        if overlaps(sb, rb):
            raise ValueError("laconic: alltoallv: send and recv must not overlap")
        p = self._op_params(codec, key, error_feedback, algo, chunk_bytes)
        args = (sb.ptr, sc, sd, rb.ptr, rc, rd, sb.dtype)
        return self._run("alltoallv", _capi.lc_alltoallv, _capi.lc_ialltoallv, args, p, rb.obj,
                         (sb, rb, sc, sd, rc, rd), async_op)

    def barrier(self, *, async_op=False):
        """Return once every rank has entered the barrier."""
        return self._run("barrier", _capi.lc_barrier, _capi.lc_ibarrier, (), None, None, (),
                         async_op, takes_params=False)

    def release(self, key):
        """Free the error-feedback state kept under ``key`` (a tensor that is
        gone). Not collective, but every rank should release a key at the
        same point of its call sequence."""
        k = tensor_key(key)
        h = self._enter()
        try:
            check(_capi.lc_tensor_release(h, k), "lc_tensor_release")
        finally:
            self._leave()


def _close_all():
    # At exit nobody waits for what is still in flight: revoke it rather
    # than wait out a peer that may never answer.
    for c in list(_live):
        try:
            c.close(abort=True)
        except Exception:  # noqa: BLE001 (interpreter exit: nothing left to tell)
            pass


atexit.register(_close_all)
