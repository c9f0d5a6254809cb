"""The Python example (examples/python/ddp_digits.py) as a user runs it:
under lcrun-style variables and under torchrun, training to a test accuracy
the uncompressed run also reaches. Run by ctest, one entry per case."""

import os
import signal
import subprocess
import sys

import harness
from harness import case

EXAMPLE = os.path.join(os.environ.get("LC_SOURCE_DIR", os.path.join(os.path.dirname(
    os.path.abspath(__file__)), "..", "..")), "examples", "python", "ddp_digits.py")


def _run_example(argv):
    sys.argv = [EXAMPLE] + argv
    sys.path.insert(0, os.path.dirname(EXAMPLE))
    import ddp_digits
    ddp_digits.main(argv)  # ends the process: 0 when the accuracy was reached


@case(ranks=4, timeout=120)
def example_onebit(rank, size):
    """4 ranks from LC_* variables (as lcrun sets them), onebit with error
    feedback: at least 93% test accuracy (uncompressed reaches 97%)."""
    _run_example(["--codec", "onebit", "--steps", "400", "--min-accuracy", "0.93"])


@case(ranks=1, timeout=150)
def example_torchrun(rank, size):
    """torchrun starts 4 ranks of the example (topk 1%): the backend comes up
    from torchrun's store alone and the run reaches 93%."""
    cmd = ["torchrun", "--redirects", "2", "--tee", "2", "--nproc_per_node", "4",
           "--master_port", os.environ["LC_TEST_PORT2"], EXAMPLE, "--codec", "topk:0.01",
           "--steps", "400", "--min-accuracy", "0.93"]
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("LC_") or k == "LC_SOURCE_DIR"}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, start_new_session=True)
    try:
        out, _ = p.communicate(timeout=130)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    print(out)
    assert p.returncode == 0, "torchrun exited %d" % p.returncode
    assert "codec topk:0.01  ranks 4" in out, out


if __name__ == "__main__":
    harness.main()
