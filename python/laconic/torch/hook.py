"""A DDP communication hook that all-reduces gradient buckets through Laconic.

    state = laconic.torch.HookState(comm, codec="onebit", model=ddp_model)
    ddp_model.register_comm_hook(state, laconic.torch.allreduce_hook)

Each bucket is averaged (``LC_AVG``) in place with the non-blocking
all-reduce; the future DDP gets completes on the communicator's completion
thread, so the bucket's communication runs while backward computes the
next buckets, as with DDP's own hooks.

Error feedback and bucket rebuilds. A compressed all-reduce keeps each
tensor's residual in the library under a tensor key. DDP rebuilds its
buckets after the first iteration (in the order gradients became ready), so
bucket index 0 can name other parameters later; PyTorch's PowerSGD hook
keyed its state by bucket index and broke on exactly that. Here the key is
the bucket's layout: which parameters it holds (their positions in the
model, or the order this state first saw them) and how many elements each
has. A rebuilt bucket gets a new key and starts with a zero residual; at
the end of every iteration (the bucket DDP marks last) the keys not used in
that iteration are released in the library, on every rank at the same
point. :meth:`HookState.reset` drops every residual (after loading a
checkpoint). ``warmup_steps`` sends the first iterations uncompressed.
"""

import itertools
import logging
import threading

import torch

from ..communicator import tensor_key

log = logging.getLogger("laconic")
_state_seq = itertools.count()


class HookState:
    """State of :func:`allreduce_hook`.

    comm: a :class:`laconic.Communicator` whose ranks are DDP's.
    codec: codec spec ("onebit", "topk:0.01", "int8", "bf16"...) or None
        for uncompressed.
    error_feedback: keep residuals for codecs that use them (default True),
        or a scheme by name ("worker", "residual", "hops").
    warmup_steps: the first iterations all-reduce uncompressed.
    model: the (DDP) module, so that parameters are named by their position
        in ``model.parameters()``; without it a parameter's number is the
        order in which this state first met it (the same on every rank, as
        DDP gives every rank the same buckets in the same order).
    algo: force a compressed all-reduce algorithm ("ring", "twophase"...).
    name: salts this state's tensor keys, so that two states on one
        communicator (two models with the same bucket layout) never share a
        residual; by default the number of states made before this one in
        the process, the same on every rank when every rank makes its
        states in the same order.
    """

    def __init__(self, comm, codec=None, error_feedback=True, warmup_steps=0, model=None,
                 algo=None, name=None):
        self.comm = comm
        self.name = str(next(_state_seq)) if name is None else str(name)
        self.codec = codec if codec not in ("", "none") else None
        self.error_feedback = error_feedback if isinstance(error_feedback, str) \
            else bool(error_feedback)
        self.warmup_steps = int(warmup_steps)
        self.algo = algo
        self.step = 0                # iterations completed (buckets marked last)
        self._param_index = {}       # id(param) -> stable number
        if model is not None:
            for i, p in enumerate(model.parameters()):
                self._param_index[id(p)] = i
        self._model_indexed = model is not None
        self._keys = {}              # key -> layout, residuals held in the library
        self._used = set()           # keys used in the current iteration
        self.released = 0            # keys released so far (bucket rebuilds, reset)
        self._lock = threading.Lock()
        self.bytes_sent = 0          # payload bytes this rank sent, all buckets so far
        self.bytes_uncompressed = 0  # what those buckets hold, as float32 bytes
        self.comm_us = 0.0           # summed elapsed time of the all-reduces
        self.calls = 0
        self._warned_dtype = False

    @property
    def keys(self):
        """The tensor keys whose residuals the library holds for this state."""
        return set(self._keys)

    def _layout(self, bucket):
        idx = []
        for p in bucket.parameters():
            i = self._param_index.get(id(p))
            if i is None:
                if self._model_indexed:
                    raise ValueError("laconic: a bucket holds a parameter that is not in the "
                                     "model given to HookState")
                i = self._param_index[id(p)] = len(self._param_index)
            idx.append((i, p.numel()))
        return tuple(idx)

    def key_for(self, bucket):
        """The tensor key of a bucket's layout (parameters and element counts)."""
        layout = self._layout(bucket)
        key = tensor_key(repr(("laconic-ddp", self.name, layout)))
        self._keys[key] = layout
        self._used.add(key)
        return key

    def _end_iteration(self):
        gone = [k for k in self._keys if k not in self._used]
        for k in gone:
            self.comm.release(k)
            del self._keys[k]
            self.released += 1
        self._used.clear()
        self.step += 1

    def reset(self):
        """Drop every residual (the library frees them) and forget the
        layouts, e.g. after loading a checkpoint. Call it on every rank at
        the same point, between iterations. The warm-up is not restarted."""
        for k in list(self._keys):
            self.comm.release(k)
            self.released += 1
        self._keys.clear()
        self._used.clear()

    def _account(self, info, nbytes):
        with self._lock:
            self.calls += 1
            self.bytes_sent += info.bytes_sent
            self.bytes_uncompressed += nbytes
            self.comm_us += info.elapsed_us

    @property
    def compression(self):
        """Bucket bytes all-reduced over payload bytes sent so far (uncompressed
        ring all-reduce sends about 2(n-1)/n of the bucket: below 1)."""
        return self.bytes_uncompressed / self.bytes_sent if self.bytes_sent else 0.0


def allreduce_hook(state, bucket):
    """DDP communication hook: average ``bucket`` across ``state.comm`` with
    Laconic, compressed as ``state`` says. Returns a future of the bucket."""
    buf = bucket.buffer()
    codec = state.codec if state.step >= state.warmup_steps else None
    if codec is not None and buf.dtype != torch.float32:
        if not state._warned_dtype:
            log.warning("laconic: %s buckets are all-reduced uncompressed (codecs take float32)",
                        buf.dtype)
            state._warned_dtype = True
        codec = None
    kwargs = {}
    if codec is not None:
        kwargs = dict(codec=codec, error_feedback=state.error_feedback)
        if state.error_feedback:
            kwargs["key"] = state.key_for(bucket)
        if state.algo is not None:
            kwargs["algo"] = state.algo
    req = state.comm.allreduce(buf, op="avg", async_op=True, **kwargs)
    if bucket.is_last():
        state._end_iteration()
    nbytes = buf.numel() * buf.element_size()

    def done(fut):
        value = fut.value()  # raises the collective's error
        state._account(req.info, nbytes)
        return value

    return req.get_future().then(done)
