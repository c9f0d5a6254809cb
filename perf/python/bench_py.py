"""Per-rank side of perf/bench-python.sh (one process per rank).

    bench_py.py latency [--iters N] [--warmup N] [--buffer numpy|torch]
        8-byte float32 all-reduces through the laconic package, timed as
        lc-bench times the C call: back to back after a barrier, each
        iteration's time the maximum over ranks, the median reported.
    bench_py.py ddp [--params N] [--steps N] [--rounds N] [--codec C] [--batch B]
        DDP step time (forward, backward, all-reduce of the gradients,
        optimizer step) of one MLP of about N parameters, in the same
        processes over the same links: DDP on Gloo's process group, and DDP
        with Laconic's communication hook (uncompressed, then with C when
        given), in alternating rounds.

Ranks come from LC_RANK/LC_WORLD_SIZE (lcrun) or Open MPI's variables
(mpirun); LC_COORD names Laconic's rendezvous, LC_BENCH_GLOO_INIT Gloo's
(tcp://host:port). Rank 0 prints one JSON object per result on stdout.
"""

import argparse
import json
import os
import sys
import time
from datetime import timedelta

import numpy as np

import laconic


def _rank_size():
    for r, s in (("LC_RANK", "LC_WORLD_SIZE"), ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE")):
        if r in os.environ:
            return int(os.environ[r]), int(os.environ[s])
    sys.exit("bench_py: no rank in the environment (run under lcrun or mpirun)")


def _max_median(comm, times):
    t = np.array(times, dtype=np.float64)
    comm.allreduce(t, op="max")
    return float(np.median(t))


def latency(args):
    rank, size = _rank_size()
    with laconic.Communicator() as comm:
        if args.buffer == "torch":
            import torch
            x, y = torch.ones(2), torch.empty(2)
        else:
            x = np.ones(2, dtype=np.float32)
            y = np.empty_like(x)
        comm.barrier()
        for _ in range(args.warmup):
            comm.allreduce(x, y)
        comm.barrier()
        times = []
        t0 = time.perf_counter()
        for _ in range(args.iters):
            comm.allreduce(x, y)
            t1 = time.perf_counter()
            times.append((t1 - t0) * 1e6)
            t0 = t1
        med = _max_median(comm, times)
        assert (y == size).all()
        if rank == 0:
            print(json.dumps({"bench": "latency", "impl": "python " + args.buffer, "bytes": 8,
                              "ranks": size,
                              "iters": args.iters, "time_us": round(med, 2)}), flush=True)


def ddp(args):
    import torch
    import torch.distributed as dist
    import torch.nn as nn

    import laconic.torch as lt

    torch.set_num_threads(1)  # 4 ranks share 2 cores
    rank, size = _rank_size()
    dist.init_process_group("gloo", init_method=os.environ["LC_BENCH_GLOO_INIT"], rank=rank,
                            world_size=size, timeout=timedelta(seconds=300))
    comm = laconic.Communicator()
    width = int((args.params / 3) ** 0.5)  # three width x width layers

    def make():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width),
                             nn.ReLU(), nn.Linear(width, width))

    runs = {"gloo": nn.parallel.DistributedDataParallel(make())}
    codecs = ["none"] + ([args.codec] if args.codec and args.codec != "none" else [])
    states = {}
    for c in codecs:
        m = make()
        states[c] = lt.HookState(comm, codec=None if c == "none" else c, model=m)
        d = nn.parallel.DistributedDataParallel(m)
        d.register_comm_hook(states[c], lt.allreduce_hook)
        runs["laconic " + c] = d
    nparams = sum(p.numel() for p in make().parameters())
    opts = {k: torch.optim.SGD(d.parameters(), lr=1e-3) for k, d in runs.items()}
    g = torch.Generator().manual_seed(rank)
    x = torch.randn(args.batch, width, generator=g)

    def step(name):
        d, o = runs[name], opts[name]
        o.zero_grad()
        d(x).square().mean().backward()
        o.step()

    times = {k: [] for k in runs}
    for name in runs:  # warm-up: buckets rebuilt, residuals and scratch made
        for _ in range(2):
            step(name)
    for _ in range(args.rounds):
        for name in runs:
            comm.barrier()
            for _ in range(args.steps):
                t0 = time.perf_counter()
                step(name)
                times[name].append((time.perf_counter() - t0) * 1e3)
    res = {k: _max_median(comm, v) for k, v in times.items()}
    if rank == 0:
        for k, v in res.items():
            row = {"bench": "ddp", "impl": k, "params": nparams, "ranks": size,
                   "batch": args.batch, "steps": args.steps * args.rounds,
                   "step_ms": round(v, 2)}
            st = states.get(k.split(" ", 1)[1]) if k.startswith("laconic") else None
            if st is not None and st.bytes_sent:
                row["wire_reduction"] = round(st.compression * 2 * (size - 1) / size, 2)
            print(json.dumps(row), flush=True)
    comm.close()
    sys.stdout.flush()
    os._exit(0)  # no DDP-on-Gloo teardown (torch 1.13 can deadlock there)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="what", required=True)
    a = sub.add_parser("latency")
    a.add_argument("--iters", type=int, default=2000)
    a.add_argument("--warmup", type=int, default=200)
    a.add_argument("--buffer", choices=("numpy", "torch"), default="numpy")
    b = sub.add_parser("ddp")
    b.add_argument("--params", type=float, default=12e6)
    b.add_argument("--steps", type=int, default=3)
    b.add_argument("--rounds", type=int, default=3)
    b.add_argument("--batch", type=int, default=32)
    b.add_argument("--codec", default=None)
    args = p.parse_args()
    {"latency": latency, "ddp": ddp}[args.what](args)


if __name__ == "__main__":
    main()
