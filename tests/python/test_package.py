"""Tests of the `laconic` package on its own: the binding against the C
header, every collective against the same call through Gloo's process
group, compressed calls, requests and futures, errors, a dead rank.
Run by ctest, one entry per case (harness.py)."""

import ctypes
import os
import subprocess
import threading
import time
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist

import harness
from harness import case, same_on_all_ranks

import laconic
from laconic import _capi


def _gloo(rank, size):
    dist.init_process_group("gloo", rank=rank, world_size=size, timeout=timedelta(seconds=30))


def _close(a, b, exact, what):
    a = a.to(torch.float64) if isinstance(a, torch.Tensor) else torch.from_numpy(a).double()
    b = b.to(torch.float64)
    if exact:
        assert torch.equal(a, b), "%s: %s != %s" % (what, a[:8], b[:8])
    else:
        assert torch.allclose(a, b, rtol=1e-2 if "16" in what else 1e-6, atol=1e-6), \
            "%s: %s vs %s" % (what, a[:8], b[:8])


@case(ranks=1, timeout=30)
def layout(rank, size):
    """Every ctypes structure's size and offsets, every enum value, as laconic.h has them."""
    out = subprocess.run([os.environ["LC_LAYOUT_BIN"]], capture_output=True, text=True,
                         check=True).stdout
    c = {}
    for line in out.splitlines():
        name, *vals = line.split()
        c[name] = [int(v) for v in vals]
    checked = 0
    for sname, st in _capi.STRUCTS.items():
        assert c[sname + ".sizeof"] == [ctypes.sizeof(st)], sname
        for fname, ftype in st._fields_:
            off, sz = c["%s.%s" % (sname, fname)]
            assert getattr(st, fname).offset == off, (sname, fname)
            assert ctypes.sizeof(ftype) == sz, (sname, fname)
            checked += 1
        assert len(st._fields_) == sum(1 for k in c if k.startswith(sname + ".")) - 1, sname
    for e in ("lc_status_t", "lc_dtype_t", "lc_op_t", "lc_algo_t", "lc_codec_type_t"):
        assert c[e + ".sizeof"] == [ctypes.sizeof(ctypes.c_int)], e
    tables = {"LC_FLOAT32": _capi.DTYPES["float32"], "LC_FLOAT16": _capi.DTYPES["float16"],
              "LC_BFLOAT16": _capi.DTYPES["bfloat16"], "LC_FLOAT64": _capi.DTYPES["float64"],
              "LC_INT32": _capi.DTYPES["int32"], "LC_INT64": _capi.DTYPES["int64"],
              "LC_UINT8": _capi.DTYPES["uint8"], "LC_PROD": _capi.OPS["prod"]}
    for op in ("sum", "avg", "max", "min"):
        tables["LC_" + op.upper()] = _capi.OPS[op]
    for a, v in _capi.ALGOS.items():
        tables["LC_ALGO_" + a.upper()] = v
    for k, v in _capi.CODECS.items():
        tables["LC_CODEC_" + k.upper()] = v
    for k, v in _capi.EF_SCHEMES.items():
        tables["LC_EF_" + k.upper()] = v
    for name, value in c.items():
        if name.startswith("LC_"):
            mine = tables[name] if name in tables else getattr(_capi, name)
            assert mine == value[0], (name, mine, value)
            checked += 1
    print("layout: %d fields and values match laconic.h" % checked)


_DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int32,
           torch.int64, torch.uint8]


@case(ranks=4, timeout=90)
def collectives_match_gloo(rank, size):
    """All-reduce (every dtype, every op), broadcast, all-gather, reduce-scatter,
    all-to-all and all-to-all-v on tensors and arrays: Gloo's results, the same
    bytes on every rank."""
    _gloo(rank, size)
    g = torch.Generator().manual_seed(100 + rank)
    with laconic.Communicator() as comm:
        assert (comm.rank, comm.size) == (rank, size)
        for dt in _DTYPES:
            exact = not dt.is_floating_point
            for op, rop in (("sum", dist.ReduceOp.SUM), ("max", dist.ReduceOp.MAX),
                            ("min", dist.ReduceOp.MIN), ("prod", dist.ReduceOp.PRODUCT)):
                if dt in (torch.float16, torch.bfloat16) and op == "prod":
                    continue
                if exact:
                    x = torch.randint(1, 4, (1031,), generator=g).to(dt)
                else:
                    x = (torch.rand(1031, generator=g) + 0.5).to(dt)
                mine = x.clone()
                comm.allreduce(mine, op=op)
                ref = x.clone()
                if dt in (torch.float16, torch.bfloat16):  # Gloo's own f16 sum order differs
                    ref = ref.float()
                dist.all_reduce(ref, op=rop)
                _close(mine, ref.to(dt) if not exact else ref, exact, "allreduce %s %s" % (dt, op))
                same_on_all_ranks(mine)
        # avg and a separate output buffer, NumPy in and out
        a = np.arange(4096, dtype=np.float32) * (rank + 1)
        out = np.empty_like(a)
        comm.allreduce(a, out, op="avg")
        assert np.allclose(out, np.arange(4096, dtype=np.float32) * 2.5)
        # broadcast from every root
        for root in range(size):
            b = torch.full((777,), float(rank))
            comm.broadcast(b, root=root)
            assert torch.equal(b, torch.full((777,), float(root)))
        # all-gather
        x = torch.randn(513, generator=g)
        got = torch.empty(size * 513)
        comm.allgather(x, got)
        ref = [torch.empty(513) for _ in range(size)]
        dist.all_gather(ref, x)
        assert torch.equal(got, torch.cat(ref))
        # reduce-scatter (integers: exact whatever the order)
        x = torch.randint(0, 100, (size * 300,), generator=g, dtype=torch.int64)
        mine = torch.empty(300, dtype=torch.int64)
        comm.reduce_scatter(x, mine)
        full = x.clone()
        dist.all_reduce(full)
        assert torch.equal(mine, full[rank * 300:(rank + 1) * 300])
        # all-to-all
        x = torch.arange(size * 64, dtype=torch.float32) + 1000 * rank
        mine = torch.empty_like(x)
        comm.alltoall(x, mine)
        ref = torch.empty_like(x)
        dist.all_to_all_single(ref, x)
        assert torch.equal(mine, ref)
        # all-to-all-v: rank r sends r + d + 1 elements to rank d
        sc = [rank + d + 1 for d in range(size)]
        rc = [s + rank + 1 for s in range(size)]
        x = torch.arange(sum(sc), dtype=torch.int32) + 100 * rank
        mine = torch.empty(sum(rc), dtype=torch.int32)
        comm.alltoallv(x, sc, mine, rc)
        ref = torch.empty(sum(rc), dtype=torch.int32)
        dist.all_to_all_single(ref, x, rc, sc)
        assert torch.equal(mine, ref)
        comm.barrier()
    dist.destroy_process_group()


@case(ranks=4, timeout=90)
def compressed(rank, size):
    """Every codec on an all-reduce with a key: identical bytes on every rank,
    error within the codec's reach, the ratio reported; error feedback off."""
    _gloo(rank, size)
    g = torch.Generator().manual_seed(7 + rank)
    with laconic.Communicator() as comm:
        for codec, bound, min_ratio in (("onebit", 1.0, 20), ("topk:0.01", 1.0, 20),
                                        ("int8", 0.05, 3.5), ("bf16", 0.01, 1.9),
                                        ("fp16", 0.01, 1.9), ("int8+zstd", 0.05, 3.0)):
            for algo in (None, "ring", "twophase"):
                x = torch.randn(1 << 16, generator=g)
                exact = x.clone()
                dist.all_reduce(exact)
                exact /= size
                y = x.clone()
                req = comm.allreduce(y, op="avg", codec=codec, key="t/%s/%s" % (codec, algo),
                                     algo=algo, async_op=True)
                info = req.wait()
                err = ((y - exact).norm() / exact.norm()).item()
                assert err < bound, (codec, algo, err)
                assert info.codec == codec.split(":")[0].split("+")[0], info
                assert info.ratio >= min_ratio, (codec, info.ratio)
                if algo:
                    assert info.algo == algo, info
                same_on_all_ranks(y)
        y = torch.randn(4096, generator=g)
        comm.allreduce(y, codec="onebit", key=5, error_feedback=False)
        same_on_all_ranks(y)
        comm.release(5)
        comm.release("t/onebit/None")
    dist.destroy_process_group()


@case(ranks=4, timeout=60)
def requests_and_futures(rank, size):
    """Several requests in flight, waited in any order; is_completed, info,
    torch futures with then(); buffers the caller dropped stay alive."""
    with laconic.Communicator() as comm:
        reqs = []
        for i in range(8):
            t = torch.full((100000,), float(rank + i))
            reqs.append((i, comm.allreduce(t, async_op=True)))
            del t  # the request keeps it
        fut = reqs[3][1].get_future().then(lambda f: f.value().sum().item())
        for i, r in reversed(reqs):
            info = r.wait(timeout=30)
            assert r.is_completed() and r.info is info and r.exception is None
            assert torch.all(r.result == float(sum(range(size)) + size * i)), i
            assert info.bytes_sent > 0 and info.seq >= 0 and info.elapsed_us > 0
            assert info.algo in ("ring", "twophase", "tree", "recdbl") and info.codec == "none"
            assert set(info.as_dict()) >= {"bytes_received", "wire_bytes", "epoch", "wire_us"}
        assert fut.wait() == 100000 * float(sum(range(size)) + size * 3)
        b = comm.barrier(async_op=True)
        assert b.get_future().wait() is None and b.is_completed()
        a = np.ones(1000, dtype=np.float64)
        r = comm.allgather(a, np.empty(size * 1000), async_op=True)
        del a
        r.wait()
        assert r.result.sum() == size * 1000
        # completion happens off the caller's thread: rank 0 joins late, so
        # elsewhere the callback is registered before the request can end
        seen = []
        ev = threading.Event()
        if rank == 0:
            time.sleep(0.5)
        r = comm.allreduce(torch.ones(10), async_op=True)
        r.get_future().add_done_callback(
            lambda f: (seen.append(threading.current_thread().name), ev.set()))
        assert ev.wait(30)
        if rank != 0:
            assert seen == ["laconic-completion"], seen
        # close(abort=True) revokes what is in flight: rank 0 never joins it
        if rank != 0:
            late = comm.allreduce(torch.ones(10), async_op=True)
            comm.close(abort=True)
            try:
                late.wait(30)
            except laconic.MembershipError:
                pass
            else:
                raise AssertionError("an aborted request succeeded")


def _fds():
    out = {}
    for f in os.listdir("/proc/self/fd"):
        try:
            out[f] = os.readlink("/proc/self/fd/" + f)
        except FileNotFoundError:  # the listing's own descriptor
            pass
    return out


@case(ranks=4, timeout=60)
def bad_arguments(rank, size):
    """Bad buffers and arguments raise TypeError/ValueError/LaconicError before
    anything is sent; ranks that disagree get MismatchError; the communicator
    goes on working and no descriptor or thread is left behind."""
    fds0 = _fds()
    with laconic.Communicator() as comm:
        t = torch.zeros(64)
        comm.allreduce(t)  # connections and scratch made on first use are not leaks
        fds1 = _fds()
        bad = [
            (lambda: comm.allreduce(torch.zeros(8, 8).t()), ValueError),       # non-contiguous
            (lambda: comm.allreduce(t[::2]), ValueError),
            (lambda: comm.allreduce(torch.zeros(4, dtype=torch.complex64)), TypeError),
            (lambda: comm.allreduce(torch.zeros(4, dtype=torch.bool)), TypeError),
            (lambda: comm.allreduce([1.0, 2.0]), TypeError),                   # not a buffer
            (lambda: comm.allreduce(np.zeros(4, dtype=">f4")), TypeError),     # byte order
            (lambda: comm.allreduce(t, torch.zeros(63)), ValueError),          # sizes differ
            (lambda: comm.allreduce(t, torch.zeros(64, dtype=torch.float64)), TypeError),
            (lambda: comm.allreduce(t, op="xor"), ValueError),
            (lambda: comm.allreduce(t, algo="magic"), ValueError),
            (lambda: comm.allreduce(t, key=-1), ValueError),
            (lambda: comm.allreduce(t, codec=3), TypeError),
            (lambda: comm.allreduce(np.zeros(4, dtype=np.float32)[::2]), ValueError),
            (lambda: comm.broadcast(np.zeros(4, dtype=np.float32), root=size), ValueError),
            (lambda: comm.allgather(t, torch.zeros(64)), ValueError),
            (lambda: comm.reduce_scatter(t, torch.zeros(64)), ValueError),
            (lambda: comm.alltoall(torch.zeros(size * 2 + 1), torch.zeros(size * 2 + 1)),
             ValueError),
            (lambda: comm.alltoall(t, t), ValueError),                          # overlap
            (lambda: comm.alltoallv(t, [1] * (size - 1), torch.zeros(4), [1] * size),
             ValueError),
            (lambda: comm.alltoallv(t, [100] * size, torch.zeros(400), [100] * size),
             ValueError),
            (lambda: comm.allreduce(torch.zeros(4, dtype=torch.int32), codec="onebit"),
             laconic.UnsupportedError),
            (lambda: comm.allreduce(t, op="max", codec="onebit"), laconic.UnsupportedError),
            (lambda: comm.allreduce(t, codec="nonsense"), laconic.LaconicError),
        ]
        ro = np.zeros(4, dtype=np.float32)
        ro.flags.writeable = False
        bad.append((lambda: comm.allreduce(ro), ValueError))
        for i, (fn, exc) in enumerate(bad):
            try:
                fn()
            except exc:
                pass
            else:
                raise AssertionError("bad call %d did not raise %s" % (i, exc.__name__))
        # ranks that disagree: every rank is told
        try:
            comm.allreduce(torch.zeros(100 + (rank == 1)))
        except laconic.MismatchError as e:
            assert e.status == _capi.LC_ERR_MISMATCH
        else:
            raise AssertionError("a count mismatch went unnoticed")
        x = torch.ones(1000)
        comm.allreduce(x)
        assert torch.all(x == size)
        fds2 = _fds()
        # none opened (the rendezvous may close its own meanwhile)
        assert fds2.keys() <= fds1.keys(), "descriptors: %s then %s" % (fds1, fds2)
    assert threading.active_count() == 1, threading.enumerate()
    assert _fds().keys() <= fds0.keys(), (fds0, _fds())
    try:
        comm.allreduce(x)
    except laconic.RevokedError:
        pass
    else:
        raise AssertionError("a closed communicator ran a collective")
    comm.close()  # twice is fine


@case(ranks=4, timeout=60, exits={3: 7}, env={"LC_PEER_TIMEOUT_MS": "2000"})
def dead_rank_fails_pending(rank, size):
    """Rank 3 dies (os._exit) in the middle of a run of non-blocking
    all-reduces; every other rank's pending requests and futures raise
    PeerLostError within the peer timeout, never hang."""
    comm = laconic.Communicator()
    x = torch.ones(1 << 20)
    for _ in range(3):
        comm.allreduce(x, op="avg")
    if rank == 3:
        os._exit(7)
    t0 = time.monotonic()
    reqs = [comm.allreduce(torch.ones(1 << 20), async_op=True) for _ in range(4)]
    futs = [r.get_future() for r in reqs]
    for f in futs:
        try:
            f.wait()
        except laconic.PeerLostError:
            pass
        else:
            raise AssertionError("a pending future completed without rank 3")
    took = time.monotonic() - t0
    assert took < 2.0 + 1.5, "survivors learnt of the death after %.2f s" % took
    assert all(isinstance(r.exception, laconic.MembershipError) for r in reqs)
    print("rank %d: PeerLostError on every pending future after %.2f s" % (rank, took))
    comm.close()


@case(ranks=4, timeout=60)
def unique_id_and_store(rank, size):
    """A communicator from a unique id passed through a torch TCPStore, and
    one from the store itself (as torchrun gives it); use as context manager."""
    store = dist.TCPStore("127.0.0.1", int(os.environ["MASTER_PORT"]), size, rank == 0,
                          timedelta(seconds=30))
    if rank == 0:
        uid = laconic.Communicator.unique_id()
        assert len(uid) == 128
        store.set("uid", uid)
    else:
        uid = store.get("uid")
    with laconic.Communicator(rank, size, unique_id=uid, timeout_ms=20000) as c1:
        x = torch.ones(10)
        c1.allreduce(x)
        assert torch.all(x == size)
    with laconic.Communicator.from_store(store, rank, size) as c2:
        y = np.full(3, rank, dtype=np.int64)
        c2.allreduce(y, op="max")
        assert (y == size - 1).all()
        assert repr(c2) == "<laconic.Communicator rank %d of %d>" % (rank, size)
    assert c2.closed


if __name__ == "__main__":
    harness.main()
