"""The ``torch.distributed`` backend "laconic": a Python ProcessGroup.

    import laconic.torch                     # registers the backend
    dist.init_process_group("laconic")       # torchrun's env://, or tcp://, file://

``ProcessGroupLaconic`` is a ``torch.distributed.ProcessGroup`` implemented
in Python (PyTorch calls Python overrides of its collectives, DDP's
included). Its communicator is made from the process group's store (rank 0
publishes a unique id), so whatever rendezvous ``init_process_group`` used
also starts Laconic. Collectives run uncompressed by default, like Gloo's;
``LaconicOptions`` given at construction, or the ``LACONIC_CODEC`` variable,
compress float32 all-reduces (sum and average) and all-to-alls. Every
collective is non-blocking underneath: the returned Work completes on the
communicator's completion thread.

Provided: all-reduce (sum, avg, min, max, product), broadcast, all-gather
(list and ``_allgather_base`` / ``all_gather_into_tensor``), reduce-scatter
(list and ``_reduce_scatter_base`` / ``reduce_scatter_tensor``), all-to-all
(list and ``all_to_all_single`` with splits), barrier. Point-to-point,
gather, scatter and reduce raise ``RuntimeError`` naming the call: the C
library has no such call.
"""

import collections
import itertools
import os
import threading
from datetime import timedelta

import torch
import torch.distributed as dist
from torch._C._distributed_c10d import Work
from torch.futures import Future

from ..communicator import Communicator

_REDUCE_OPS = (("SUM", "sum"), ("AVG", "avg"), ("MIN", "min"), ("MAX", "max"),
               ("PRODUCT", "prod"))


def _op_name(reduce_op):
    for attr, name in _REDUCE_OPS:
        ref = getattr(dist.ReduceOp, attr, None)
        if ref is not None and reduce_op == ref:
            return name
    raise RuntimeError("laconic: reduce op %s is not supported (sum, avg, min, max, product)"
                       % reduce_op)


class _KeepAlive:
    """PyTorch's C++ side (DDP's reducer, parameter checks) calls a Python
    Work's ``wait`` and ``get_future`` through a pybind11 trampoline, which
    finds the Python methods only while the Python object lives; once it is
    collected the C++ base ``wait`` blocks forever (measured on torch 1.13).
    So every work stays referenced here until it completes, and the last
    ``recent`` completed ones a while longer (with their output tensors),
    for a C++ caller that waits on a work right after it finished."""

    def __init__(self, recent=128):
        self._lock = threading.Lock()
        self._pending = set()
        self._recent = collections.deque(maxlen=recent)

    def add(self, work):
        with self._lock:
            self._pending.add(work)

    def done(self, work):
        with self._lock:
            self._pending.discard(work)
            self._recent.append(work)


_alive = _KeepAlive()
_pg_seq = itertools.count()  # every rank makes its groups in the same order


class LaconicWork(Work):
    """Work of one or more requests: ``wait()`` raises the first error
    (``laconic.PeerLostError``...), ``get_future()`` gives the output
    tensors. ``after`` runs once all succeeded (copies out of a staging
    buffer), on the thread that completes the last request."""

    def __init__(self, requests, outputs, after=None):
        super().__init__()
        _alive.add(self)
        self._requests = requests if isinstance(requests, list) else [requests]
        self._outputs = outputs

        self._error = None

        def finish(fut):
            try:
                for f in fut.value() if isinstance(fut.value(), list) else [fut]:
                    f.value()  # raises the collective's error
                if after is not None:
                    after()
                return outputs
            except BaseException as e:
                self._error = e
                raise
            finally:
                _alive.done(self)

        futs = [r.get_future() for r in self._requests]
        if not futs:
            self._future = Future()
            self._future.set_result(outputs)
            _alive.done(self)
        elif len(futs) == 1:
            self._future = futs[0].then(finish)
        else:
            self._future = torch.futures.collect_all(futs).then(finish)

    def wait(self, timeout=timedelta(0)):
        # timeout is not applied: the communicator's own timeouts bound
        # every collective (LC_TIMEOUT_MS, LC_PEER_TIMEOUT_MS)
        self._future.wait()
        return True

    def is_completed(self):
        return self._future.done()

    def is_success(self):
        if not self._future.done():
            raise RuntimeError("laconic: the collective has not completed")
        return self.exception() is None

    def exception(self):
        return self._error

    def result(self):
        self.wait()
        return self._outputs

    def get_future(self):
        return self._future

    @property
    def info(self):
        """The :class:`laconic.OpInfo` of each request once it succeeded."""
        return [r.info for r in self._requests]


class LaconicOptions:
    """Compression of a ProcessGroupLaconic's float32 all-reduces and
    all-to-alls: ``codec`` (spec string or None), ``error_feedback``, and
    ``key``, a function of the tensor giving its error-feedback key (None:
    no key, hence no residuals). Defaults from ``LACONIC_CODEC``."""

    def __init__(self, codec=None, error_feedback=None, key=None):
        if codec is None:
            codec = os.environ.get("LACONIC_CODEC") or None
        self.codec = None if codec in (None, "", "none") else codec
        self.error_feedback = error_feedback
        self.key = key


def _single(tensors, what):
    if len(tensors) != 1:
        raise RuntimeError("laconic: %s takes one tensor per rank (CPU), got %d"
                           % (what, len(tensors)))
    return tensors[0]


class ProcessGroupLaconic(dist.ProcessGroup):
    """A torch.distributed process group over a :class:`laconic.Communicator`."""

    def __init__(self, store, rank, size, timeout=None, options=None, comm=None):
        super().__init__(rank, size)
        if comm is None:
            kw = {}
            if timeout is not None:
                ms = int(timeout.total_seconds() * 1000)
                kw["timeout_ms"] = max(1, min(ms, 2 ** 32 - 1))
            comm = Communicator.from_store(store, rank, size,
                                           prefix="laconic/pg/%d" % next(_pg_seq), **kw)
        self.comm = comm
        self.options = options or LaconicOptions()

    @classmethod
    def from_communicator(cls, comm, options=None):
        """A process group over an existing communicator (e.g. one made from
        the environment under ``lcrun`` or ``mpirun``), for
        ``DistributedDataParallel(process_group=...)`` without
        ``init_process_group``."""
        return cls(None, comm.rank, comm.size, options=options, comm=comm)

    # --- helpers -----------------------------------------------------------------

    def getBackendName(self):
        return "laconic"

    def name(self):
        return "laconic"

    def _codec_kw(self, t):
        o = self.options
        if o.codec is None or t.dtype != torch.float32:
            return {}
        kw = {"codec": o.codec}
        if o.error_feedback is not None:
            kw["error_feedback"] = o.error_feedback
        if o.key is not None:
            kw["key"] = o.key(t)
        return kw

    @staticmethod
    def _unsupported(what):
        raise RuntimeError("laconic: the laconic backend does not provide %s" % what)

    # --- collectives ---------------------------------------------------------------

    def allreduce(self, tensors, opts=None):
        t = _single(tensors, "allreduce")
        op = _op_name(opts.reduceOp) if opts is not None else "sum"
        kw = self._codec_kw(t) if op in ("sum", "avg") else {}
        return LaconicWork(self.comm.allreduce(t, op=op, async_op=True, **kw), tensors)

    def allreduce_coalesced(self, tensors, opts=None):
        op = _op_name(opts.reduceOp) if opts is not None else "sum"
        return LaconicWork([self.comm.allreduce(t, op=op, async_op=True) for t in tensors],
                           tensors)

    def broadcast(self, tensors, opts):
        t = _single(tensors, "broadcast")
        return LaconicWork(self.comm.broadcast(t, root=opts.rootRank, async_op=True), tensors)

    def _allgather_base(self, output, input, opts=None):
        return LaconicWork(self.comm.allgather(input, output, async_op=True), [output])

    def allgather(self, output_tensors, input_tensors, opts=None):
        inp = _single(input_tensors, "allgather")
        outs = _single(output_tensors, "allgather")
        if len(outs) != self.size() or any(o.shape != inp.shape or o.dtype != inp.dtype
                                           for o in outs):
            raise RuntimeError("laconic: allgather needs %d output tensors of the input's shape "
                               "and dtype" % self.size())
        flat = torch.empty((self.size(),) + tuple(inp.shape), dtype=inp.dtype)

        def scatter_out():
            for o, f in zip(outs, flat):
                o.copy_(f)

        return LaconicWork(self.comm.allgather(inp.contiguous(), flat, async_op=True),
                           output_tensors, scatter_out)

    def _reduce_scatter_base(self, output, input, opts=None):
        op = _op_name(opts.reduceOp) if opts is not None else "sum"
        return LaconicWork(self.comm.reduce_scatter(input, output, op=op, async_op=True),
                           [output])

    def reduce_scatter(self, output_tensors, input_tensors, opts=None):
        out = _single(output_tensors, "reduce_scatter")
        ins = _single(input_tensors, "reduce_scatter")
        if len(ins) != self.size():
            raise RuntimeError("laconic: reduce_scatter needs %d input tensors" % self.size())
        op = _op_name(opts.reduceOp) if opts is not None else "sum"
        flat = torch.stack([i.reshape(out.shape) for i in ins]).contiguous()
        return LaconicWork(self.comm.reduce_scatter(flat, out, op=op, async_op=True),
                           output_tensors)

    def alltoall_base(self, output, input, output_split_sizes, input_split_sizes, opts=None):
        n = self.size()
        kw = self._codec_kw(input)
        if not output_split_sizes and not input_split_sizes:
            return LaconicWork(self.comm.alltoall(input, output, async_op=True, **kw), [output])
        # splits count rows of dim 0 (an empty list: equal rows per rank)
        rows = []
        for t, splits, what in ((input, input_split_sizes, "input"),
                                (output, output_split_sizes, "output")):
            if not splits:
                if t.shape[0] % n:
                    raise RuntimeError("laconic: all_to_all_single: %s's %d rows do not split "
                                       "into %d equal parts" % (what, t.shape[0], n))
                splits = [t.shape[0] // n] * n
            if len(splits) != n or sum(splits) != t.shape[0]:
                raise RuntimeError("laconic: all_to_all_single: %s splits %s do not cover its "
                                   "%d rows in %d parts" % (what, list(splits), t.shape[0], n))
            row = t[0].numel() if t.shape[0] else 0
            rows.append([s * row for s in splits])
        return LaconicWork(self.comm.alltoallv(input, rows[0], output, rows[1], async_op=True,
                                               **kw), [output])

    def alltoall(self, output_tensors, input_tensors, opts=None):
        n = self.size()
        if len(output_tensors) != n or len(input_tensors) != n:
            raise RuntimeError("laconic: alltoall needs %d input and output tensors" % n)
        if len({t.dtype for t in list(output_tensors) + list(input_tensors)}) != 1:
            raise RuntimeError("laconic: alltoall: input and output tensors differ in dtype")
        send = torch.cat([t.reshape(-1) for t in input_tensors])
        recv = torch.empty(sum(t.numel() for t in output_tensors), dtype=send.dtype)
        sc = [t.numel() for t in input_tensors]
        rc = [t.numel() for t in output_tensors]

        def scatter_out():
            at = 0
            for o in output_tensors:
                o.copy_(recv[at:at + o.numel()].view(o.shape))
                at += o.numel()

        return LaconicWork(self.comm.alltoallv(send, sc, recv, rc, async_op=True,
                                               **self._codec_kw(send)),
                           output_tensors, scatter_out)

    def barrier(self, opts=None):
        return LaconicWork(self.comm.barrier(async_op=True), [])

    # --- not provided by the C library -------------------------------------------------

    def send(self, tensors, dst, tag=0):
        self._unsupported("send")

    def recv(self, tensors, src, tag=0):
        self._unsupported("recv")

    def recv_anysource(self, tensors, tag=0):
        self._unsupported("recv_anysource")

    def gather(self, output_tensors, input_tensors, opts=None):
        self._unsupported("gather")

    def scatter(self, output_tensors, input_tensors, opts=None):
        self._unsupported("scatter")

    def reduce(self, tensors, opts=None):
        self._unsupported("reduce")


def communicator(group=None):
    """The :class:`laconic.Communicator` of a "laconic" process group (the
    default group when ``group`` is None), e.g. for the DDP hook's state."""
    pg = group if group is not None else dist.distributed_c10d._get_default_group()
    comm = getattr(pg, "comm", None)
    if not isinstance(comm, Communicator):
        raise ValueError("laconic: %r is not a laconic process group" % (pg,))
    return comm


def _create(store, rank, size, timeout):
    return ProcessGroupLaconic(store, rank, size, timeout)


def register():
    """Register the "laconic" backend with torch.distributed (done on import
    of laconic.torch; calling it again does nothing)."""
    if "LACONIC" in dist.Backend._plugins:
        return
    dist.Backend.register_backend("laconic", _create)
