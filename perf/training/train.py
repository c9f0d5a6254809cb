"""Per-rank side of perf/bench-training.sh: data-parallel training through
the laconic package, one row after another in the same processes.

    train.py --model mlp|cnn|lm --rows ROW[,ROW...] [--steps N] [--seed S]
             [--out FILE]

A row is CODEC[@ALGO][/OPTION=VALUE...]: CODEC a Laconic codec spec ("none",
"onebit", "topk:0.001", "int8"...), ALGO the all-reduce algorithm ("auto"
when left out), and options ``ef=0`` (no error feedback), ``ef=1`` (the
default scheme) or ``ef=worker|residual|hops`` (a scheme by name),
``warmup=N`` or ``warmup=N:SPEC``: the first N steps all-reduced
uncompressed, or with codec SPEC under a key of their own (a per-tensor
warm-up, dense or DGC's denser start; the row's residuals start after it),
and
``opt=adam``: an Adam recipe trained with laconic.torch.CompressedAdam (the
momentum all-reduced with CODEC after 10% of the steps uncompressed) in
place of the gradient all-reduce and torch's Adam.

Each row trains the recipe's model from its seed as data-parallel training
does: every step each rank computes its gradients on its own batch, straight
into one flat buffer (the parameters' .grad are views of it), that buffer is
all-reduced with LC_AVG under a tensor key of its own (so error feedback, when
on, is kept per row), and every rank applies the optimizer to the result.
After the last step each rank evaluates the model, and the ranks check that
their parameters are bit-identical. Rank 0 appends one JSON object per row to
FILE (or prints it): the metric, the wire reduction (the bytes an
uncompressed ring all-reduce of the same buffers sends, 2(n-1)/n of the
buffer per rank and call, over the payload bytes this row sent, summed over
every call and rank: a fair measure across algorithms, which send different
volumes), the codec's own ratio (uncompressed over compressed bytes of the
messages it sent), the time in all-reduce calls and in the whole loop, and
whether the parameters matched.

Ranks come from the environment as laconic.Communicator() reads it (lcrun).
"""

import argparse
import hashlib
import json
import os
import sys
import time

import numpy as np
import torch

import laconic

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402


def parse_row(spec):
    """'topk:0.01@ring/ef=0' -> dict(codec, algo, ef)."""
    head, *opts = spec.split("/")
    codec, _, algo = head.partition("@")
    row = dict(row=spec, codec=codec, algo=algo or "auto", ef=None, opt=None, warmup=0,
               warmup_codec="none")
    for o in opts:
        k, _, v = o.partition("=")
        if k == "ef" and v in ("0", "1"):
            row["ef"] = v == "1"
        elif k == "ef" and v in ("worker", "residual", "hops"):
            row["ef"] = v
        elif k == "warmup" and v.partition(":")[0].isdigit():
            n, _, wc = v.partition(":")
            row["warmup"], row["warmup_codec"] = int(n), wc or "none"
        elif k == "opt" and v == "adam":
            row["opt"] = v
        else:
            raise SystemExit("train.py: unknown row option %r in %r" % (o, spec))
    return row


def digest_same(comm, t):
    """Whether every rank holds the same bytes in tensor t: a 24-byte
    BLAKE2b digest as four 48-bit integers (exact in float64), whose max and
    min over the ranks must agree."""
    d = hashlib.blake2b(t.numpy().tobytes(), digest_size=24).digest()
    v = np.array([int.from_bytes(d[i:i + 6], "little") for i in range(0, 24, 6)],
                 dtype=np.float64)
    hi, lo = v.copy(), v.copy()
    comm.allreduce(hi, op="max")
    comm.allreduce(lo, op="min")
    return bool(np.array_equal(hi, lo))


def train(comm, model, row, steps, seed):
    rank = comm.rank
    r = models.Recipe(model, seed)
    params = [p for p in r.model.parameters()]
    n = sum(p.numel() for p in params)
    flat = torch.zeros(n)
    off = 0
    for p in params:  # backward accumulates straight into the flat buffer
        p.grad = flat[off:off + p.numel()].view_as(p)
        off += p.numel()
    opt = r.optimizer(params)
    nsteps = steps or r.steps
    if row["opt"] == "adam":
        return train_compressed_adam(comm, r, row, opt, nsteps, flat)
    compressed = row["codec"] != "none"
    kw = dict(codec=row["codec"], algo=row["algo"])
    if compressed:
        kw["key"] = "train/%s/%s" % (model, row["row"])
        if row["ef"] is not None:
            kw["error_feedback"] = row["ef"]
    warm = {}  # the warm-up's all-reduce: uncompressed, or a codec under a key of its own
    if row["warmup_codec"] != "none":
        warm = dict(codec=row["warmup_codec"], algo=row["algo"],
                    key="train/%s/%s/warmup" % (model, row["row"]))
    raw = sent = 0
    comm_s = 0.0
    algo = None
    comm.barrier()
    t0 = time.perf_counter()
    for step in range(nsteps):
        x, y = r.batch(rank, step)
        flat.zero_()
        r.loss(x, y).backward()
        c0 = time.perf_counter()
        dense = step < row["warmup"]
        req = comm.allreduce(flat, op="avg", async_op=True, **(warm if dense else kw))
        info = req.wait()
        comm_s += time.perf_counter() - c0
        raw += info.bytes_sent * info.ratio
        sent += info.bytes_sent
        if not dense:
            algo = info.algo
        opt.step()
    total_s = time.perf_counter() - t0
    if compressed:
        comm.release(kw["key"])
    if warm:
        comm.release(warm["key"])
    return finish(comm, r, row, nsteps, n, raw, sent, comm_s, total_s, algo)


def train_compressed_adam(comm, r, row, adam, nsteps, flat):
    """The row with laconic.torch.CompressedAdam in place of torch's Adam
    and the gradient all-reduce."""
    from laconic.torch import CompressedAdam
    if not isinstance(adam, torch.optim.Adam):
        raise SystemExit("train.py: opt=adam needs a recipe trained with Adam (lm)")
    g = adam.param_groups[0]
    params = g["params"]
    kw = {} if row["ef"] is None else dict(error_feedback=row["ef"])  # else its default
    opt = CompressedAdam(params, comm, codec=None if row["codec"] == "none" else row["codec"],
                         lr=g["lr"], betas=g["betas"], eps=g["eps"],
                         weight_decay=g["weight_decay"], warmup_steps=max(1, nsteps // 10),
                         algo=row["algo"], key="train/%s/%s" % (r.name, row["row"]), **kw)
    comm.barrier()
    t0 = time.perf_counter()
    for step in range(nsteps):
        x, y = r.batch(comm.rank, step)
        flat.zero_()
        r.loss(x, y).backward()
        opt.step()
    total_s = time.perf_counter() - t0
    opt.release()
    return finish(comm, r, row, nsteps, flat.numel(), opt.bytes_raw, opt.bytes_sent,
                  opt.comm_seconds, total_s, row["algo"])


def finish(comm, r, row, nsteps, n, raw, sent, comm_s, total_s, algo):
    """Evaluate, check the ranks agree, and make the row's result."""
    params = list(r.model.parameters())
    metric = r.evaluate()
    flat_params = torch.cat([p.detach().reshape(-1) for p in params])
    same = digest_same(comm, flat_params)
    bytes_ = np.array([raw, sent, comm_s, total_s], dtype=np.float64)
    tot = bytes_.copy()
    comm.allreduce(tot, op="sum")
    mx = bytes_.copy()
    comm.allreduce(mx, op="max")
    # What an uncompressed ring all-reduce of the same buffers sends, over every rank.
    ring_bytes = 2.0 * (comm.size - 1) * 4 * n * nsteps
    return dict(model=r.name, ranks=comm.size, row=row["row"], codec=row["codec"], algo=algo,
                ef=row["ef"], opt=row["opt"], warmup=row["warmup"],
                warmup_codec=row["warmup_codec"], params=n, steps=nsteps, metric_name=r.metric,
                metric=metric, higher_is_better=r.higher,
                codec_ratio=tot[0] / tot[1] if tot[1] > 0 else 1.0, bytes_sent=tot[1],
                wire_reduction=ring_bytes / tot[1] if tot[1] > 0 else 1.0,
                comm_s=mx[2], total_s=mx[3], identical=same)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, choices=("mlp", "cnn", "lm"))
    ap.add_argument("--rows", required=True)
    ap.add_argument("--steps", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out")
    a = ap.parse_args()
    torch.set_num_threads(1)
    rows = [parse_row(s) for s in a.rows.split(",") if s]
    with laconic.Communicator() as comm:
        for row in rows:
            res = train(comm, a.model, row, a.steps, a.seed)
            res["seed"] = a.seed
            if comm.rank == 0:
                line = json.dumps(res)
                if a.out:
                    with open(a.out, "a") as f:
                        f.write(line + "\n")
                print(line, flush=True)


if __name__ == "__main__":
    main()
