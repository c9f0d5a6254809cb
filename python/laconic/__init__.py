"""Laconic: MPI-style collectives that compress what they send, from Python.

    import laconic, torch
    with laconic.Communicator() as comm:            # LC_RANK, LC_WORLD_SIZE, LC_COORD (lcrun)
        g = torch.randn(1 << 20)
        comm.allreduce(g, op="avg", codec="onebit", key="grad")   # in place, same bytes on every rank
        req = comm.allreduce(g, op="avg", async_op=True)
        info = req.wait()                            # OpInfo: bytes_sent, ratio, algo...

Collectives take CPU torch tensors and NumPy arrays without copying them.
Errors are exceptions carrying the C status (laconic.errors). PyTorch
integration (a DDP communication hook and a ``torch.distributed`` backend)
lives in :mod:`laconic.torch`, which imports torch; this module does not.

The C library is found through $LACONIC_LIB, else the path this package was
built or installed with, else the dynamic linker's search.
"""

from . import errors
from ._capi import lib_path
from .communicator import Communicator, OpInfo, Request, tensor_key
from .errors import (CoordLostError, CorruptError, InvalidArgumentError, LaconicError,
                     MembershipError, MismatchError, NoMemoryError, PeerLostError,
                     RejectedError, RemovedError, RevokedError, SystemError_, TimeoutError,
                     TooFewPeersError, UnsupportedError)

__version__ = "0.1.0"

__all__ = ["Communicator", "Request", "OpInfo", "tensor_key", "errors", "lib_path",
           "LaconicError", "InvalidArgumentError", "NoMemoryError", "UnsupportedError",
           "TimeoutError", "CorruptError", "MismatchError", "SystemError_", "MembershipError",
           "PeerLostError", "RevokedError", "TooFewPeersError", "CoordLostError",
           "RejectedError", "RemovedError", "__version__"]
