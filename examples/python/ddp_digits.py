"""Data-parallel training of a small classifier with DDP and Laconic.

A two-layer MLP learns scikit-learn's handwritten digits (1,797 8x8 images,
shipped by Debian's python3-sklearn). Every rank trains on its own shard of
the training set; DDP averages the gradients through Laconic's
communication hook, compressed with --codec and error feedback, over a
process group that is Laconic's "laconic" backend. Rank 0 prints the test
accuracy and how many bytes the gradients put on the wire.

    torchrun --nproc_per_node 4 examples/python/ddp_digits.py --codec onebit
    lcrun -n 4 /usr/bin/python3 examples/python/ddp_digits.py --codec topk:0.01

(Under torchrun the backend starts from torchrun's store; under lcrun or
mpirun from the LC_* / Open MPI variables.) PYTHONPATH=build/python runs it
from a build tree; after `cmake --install` nothing needs setting.
"""

import argparse
import os
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import laconic
import laconic.torch as lt


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--codec", default="onebit",
                   help="none, onebit, topk:0.01, int8, bf16... (default onebit)")
    p.add_argument("--steps", type=int, default=600, help="training steps (default 600)")
    p.add_argument("--batch", type=int, default=32, help="samples per rank and step")
    p.add_argument("--lr", type=float, default=0.05, help="SGD learning rate (momentum 0.9)")
    p.add_argument("--warmup", type=int, default=0, help="first steps uncompressed")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--min-accuracy", type=float, default=0.0,
                   help="exit 1 if the test accuracy ends below this")
    return p.parse_args(argv)


def setup():
    """The process group and its communicator, whichever launcher started us."""
    if "TORCHELASTIC_RUN_ID" in os.environ or (
            "MASTER_ADDR" in os.environ and "LC_RANK" not in os.environ):
        dist.init_process_group("laconic")           # torchrun: env:// store
        return dist.group.WORLD, lt.communicator()
    comm = laconic.Communicator()                    # lcrun / mpirun: LC_* variables
    return lt.ProcessGroupLaconic.from_communicator(comm), comm


def main(argv=None):
    args = parse_args(argv)
    pg, comm = setup()
    rank, size = comm.rank, comm.size

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    shard = np.arange(rank, len(xtr), size)          # this rank's share of the data
    xtr, ytr = torch.from_numpy(xtr[shard]), torch.from_numpy(ytr[shard])

    torch.manual_seed(args.seed)                     # same initial weights everywhere
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10))
    ddp = nn.parallel.DistributedDataParallel(model, process_group=pg)
    codec = None if args.codec == "none" else args.codec
    state = lt.HookState(comm, codec=codec, model=model, warmup_steps=args.warmup)
    ddp.register_comm_hook(state, lt.allreduce_hook)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)

    gen = torch.Generator().manual_seed(args.seed * 1000 + rank)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        idx = torch.randint(0, len(xtr), (args.batch,), generator=gen)
        opt.zero_grad()
        nn.functional.cross_entropy(ddp(xtr[idx]), ytr[idx]).backward()
        opt.step()
    took = time.perf_counter() - t0

    with torch.no_grad():
        acc = (model(torch.from_numpy(xte)).argmax(1).numpy() == yte).mean()
    # payload bytes every rank sent (frame headers not counted), summed
    sent = np.array([state.bytes_sent, state.bytes_uncompressed], dtype=np.float64)
    comm.allreduce(sent)
    if rank == 0:
        plain = sent[1] * 2 * (size - 1) / size      # an uncompressed ring sends this much
        print("codec %-10s ranks %d  steps %d  test accuracy %.2f%%  payload sent %.2f MB "
              "(%.1fx less than uncompressed)  comm %.0f ms of %.0f ms"
              % (args.codec, size, args.steps, 100 * acc, sent[0] / 1e6, plain / sent[0],
                 state.comm_us / 1e3, took * 1e3), flush=True)
    ok = acc >= args.min_accuracy
    comm.close()                                     # a clean goodbye to every peer
    os._exit(0 if ok else 1)                         # and no DDP teardown after it


if __name__ == "__main__":
    main()
