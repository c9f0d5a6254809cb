"""Multi-process runner of the Python tests (one ctest entry per case).

    /usr/bin/python3 test_x.py --list          the cases of test_x.py
    /usr/bin/python3 test_x.py CASE            run CASE on its ranks, pass or fail

A test file defines cases with the :func:`case` decorator and ends with
``harness.main()``. Running a case starts ``ranks`` processes of the same
file, each in its own session, with the environment of a rank: LC_RANK,
LC_WORLD_SIZE and LC_COORD for Laconic, RANK, WORLD_SIZE, MASTER_ADDR and
MASTER_PORT for torch.distributed, LC_TEST_PORT2 for a second store (free
loopback ports, picked here). The
case passes when every rank exits as the case expects within ``timeout``
seconds; otherwise every process group still running is killed (also when
the runner itself is interrupted) and the ranks' output is printed.
"""

import faulthandler
import os
import signal
import socket
import subprocess
import sys
import time
import traceback

_CASES = {}


def case(ranks=4, timeout=60, exits=None, env=None):
    """Declare a test case run on ``ranks`` processes. ``exits`` maps a rank
    to the exit status it must end with (default 0 for every rank); ``env``
    adds variables to every rank's environment."""
    def wrap(fn):
        _CASES[fn.__name__] = dict(fn=fn, ranks=ranks, timeout=timeout, exits=exits or {},
                                   env=env or {})
        return fn
    return wrap


def finish():
    """End a passing rank at once, before its case's locals are destroyed.
    torch 1.13 can deadlock tearing a Gloo process group down inside DDP's
    reducer (its worker threads free tensors that need the GIL the
    destructor holds), so cases that leave DDP on Gloo call this last."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def same_on_all_ranks(t, group=None):
    """Assert that every rank holds the same bytes in ``t`` (a tensor or a
    NumPy array): their SHA-256 prefixes are all-gathered over ``group`` of
    the torch.distributed default (a Gloo group the case made)."""
    import ctypes
    import hashlib

    import torch
    import torch.distributed as dist

    raw = ctypes.string_at(t.data_ptr(), t.numel() * t.element_size()) \
        if isinstance(t, torch.Tensor) else t.tobytes()
    h = torch.tensor(list(hashlib.sha256(raw).digest()[:8]), dtype=torch.int64)
    allh = [torch.empty_like(h) for _ in range(dist.get_world_size(group))]
    dist.all_gather(allh, h, group=group)
    assert all(torch.equal(allh[0], x) for x in allh), "the bytes differ between ranks"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(name, spec):
    n = spec["ranks"]
    base = dict(os.environ)
    base.update({"LC_WORLD_SIZE": str(n), "WORLD_SIZE": str(n),
                 "LC_COORD": "127.0.0.1:%d" % _free_port(), "MASTER_ADDR": "127.0.0.1",
                 "MASTER_PORT": str(_free_port()), "LC_TEST_PORT2": str(_free_port()),
                 "PYTHONUNBUFFERED": "1"})
    base.update(spec["env"])
    procs = []
    out_files = []

    def kill_all(*_):
        for p in procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for p in procs:
            p.wait()

    signal.signal(signal.SIGTERM, lambda *a: (kill_all(), sys.exit(143)))
    ok = False
    try:
        for r in range(n):
            env = dict(base, LC_RANK=str(r), RANK=str(r), LOCAL_RANK=str(r))
            f = open(_tmp_out(name, r), "w+")
            out_files.append(f)
            procs.append(subprocess.Popen([sys.executable, sys.argv[0], "--rank", name], env=env,
                                          stdout=f, stderr=subprocess.STDOUT,
                                          start_new_session=True))
        deadline = time.monotonic() + spec["timeout"]
        while time.monotonic() < deadline and any(p.poll() is None for p in procs):
            time.sleep(0.05)
        timed_out = any(p.poll() is None for p in procs)
        kill_all()
        bad = []
        for r, p in enumerate(procs):
            want = spec["exits"].get(r, 0)
            if timed_out and p.returncode == -signal.SIGKILL:
                bad.append("rank %d still running after %d s (killed)" % (r, spec["timeout"]))
            elif p.returncode != want:
                bad.append("rank %d exited %d, expected %d" % (r, p.returncode, want))
        ok = not bad
        for r, f in enumerate(out_files):
            f.seek(0)
            text = f.read()
            if text.strip() and (not ok or os.environ.get("LC_TEST_VERBOSE")):
                sys.stdout.write("".join("[rank %d] %s\n" % (r, line)
                                         for line in text.rstrip("\n").split("\n")))
        for b in bad:
            print("FAIL %s: %s" % (name, b))
    finally:
        kill_all()
        for r, f in enumerate(out_files):
            f.close()
            os.unlink(_tmp_out(name, r))
    if ok:
        print("PASS %s (%d ranks)" % (name, n))
    return 0 if ok else 1


def _tmp_out(name, r):
    return "/tmp/lc-pytest-%d-%s-%d.log" % (os.getpid(), name, r)


def main():
    args = sys.argv[1:]
    if args == ["--list"]:
        print("\n".join(sorted(_CASES)))
        return
    if len(args) == 2 and args[0] == "--rank":
        spec = _CASES[args[1]]
        # a rank that hangs prints where, before the runner kills it
        faulthandler.dump_traceback_later(max(1, spec["timeout"] - 5), exit=True)
        try:
            spec["fn"](int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]))
        except BaseException:  # noqa: BLE001 (report whatever ended the rank)
            traceback.print_exc()
            sys.stdout.flush()
            os._exit(1)
        finish()  # skip interpreter teardown: the case closed what it opened
    if len(args) != 1 or args[0] not in _CASES:
        sys.exit("usage: %s --list | CASE (one of: %s)" % (sys.argv[0], ", ".join(sorted(_CASES))))
    sys.exit(_launch(args[0], _CASES[args[0]]))
