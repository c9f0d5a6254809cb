"""Exceptions raised for liblaconic's status codes.

Every failed call raises a subclass of :class:`LaconicError` whose
``status`` is the C ``lc_status_t`` value and whose message carries the
library's text for it. Where Python has a matching built-in exception the
class derives from it too, so ``except TimeoutError`` and ``except
MemoryError`` catch what callers expect. Codes at or below
``LC_ERR_PEER_LOST`` (a lost peer, a revoked communicator...) derive from
:class:`MembershipError`: the communicator is broken and later collectives
on it fail as well.
"""

from . import _capi


class LaconicError(RuntimeError):
    """A liblaconic call failed. ``status`` is the ``lc_status_t`` value."""

    status = None

    def __init__(self, message, status=None):
        if status is not None:
            self.status = status
        super().__init__("%s (%s, status %d)" % (message, _capi.status_str(self.status),
                                                 self.status))


class InvalidArgumentError(LaconicError, ValueError):
    """``LC_ERR_INVALID_ARG``: an argument the library refused."""
    status = _capi.LC_ERR_INVALID_ARG


class NoMemoryError(LaconicError, MemoryError):
    """``LC_ERR_NO_MEMORY``."""
    status = _capi.LC_ERR_NO_MEMORY


class UnsupportedError(LaconicError):
    """``LC_ERR_UNSUPPORTED``: valid, but not supported (a lossy codec with ``max``...)."""
    status = _capi.LC_ERR_UNSUPPORTED


class TimeoutError(LaconicError, TimeoutError):  # noqa: A001 (shadows the built-in on purpose)
    """``LC_ERR_TIMEOUT``: no progress within the communicator's timeout."""
    status = _capi.LC_ERR_TIMEOUT


class CorruptError(LaconicError):
    """``LC_ERR_CORRUPT``: a frame or codec payload failed validation."""
    status = _capi.LC_ERR_CORRUPT


class MismatchError(LaconicError):
    """``LC_ERR_MISMATCH``: ranks disagree on count, dtype, op, root, codec or key."""
    status = _capi.LC_ERR_MISMATCH


class SystemError_(LaconicError, OSError):
    """``LC_ERR_SYSTEM``: a system call failed (the log says which)."""
    status = _capi.LC_ERR_SYSTEM


class MembershipError(LaconicError):
    """A membership failure: the communicator has lost a peer and is broken."""


class PeerLostError(MembershipError):
    """``LC_ERR_PEER_LOST``: a peer died, closed its connections or went silent."""
    status = _capi.LC_ERR_PEER_LOST


class RevokedError(MembershipError):
    """``LC_ERR_REVOKED``: the communicator was revoked (or closed under the call)."""
    status = _capi.LC_ERR_REVOKED


class TooFewPeersError(MembershipError):
    """``LC_ERR_TOO_FEW_PEERS``."""
    status = _capi.LC_ERR_TOO_FEW_PEERS


class CoordLostError(MembershipError):
    """``LC_ERR_COORD_LOST``: the rendezvous, or the membership coordinator a view
    change needed, could not be reached in time."""
    status = _capi.LC_ERR_COORD_LOST


class RejectedError(MembershipError):
    """``LC_ERR_REJECTED``: a connection was refused (another job or key)."""
    status = _capi.LC_ERR_REJECTED


class RemovedError(MembershipError):
    """``LC_ERR_REMOVED``: this rank was removed from the view (taken for failed);
    the others went on without it."""
    status = _capi.LC_ERR_REMOVED


_BY_STATUS = {cls.status: cls for cls in (
    InvalidArgumentError, NoMemoryError, UnsupportedError, TimeoutError, CorruptError,
    MismatchError, SystemError_, PeerLostError, RevokedError, TooFewPeersError,
    CoordLostError, RejectedError, RemovedError)}


def error_for(status, what):
    """The exception for a failed status (``what`` names the call)."""
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = MembershipError if status <= _capi.LC_ERR_PEER_LOST else LaconicError
        return cls(what, status)
    return cls(what)


def check(status, what):
    """Raise the exception for ``status`` unless it is ``LC_OK``."""
    if status != _capi.LC_OK:
        raise error_for(status, what)
