"""The one exception hierarchy of ccfarm.

`CcfarmError` is the root. Protocol errors are split by who is at fault:
`RemoteProtocolError` means the peer sent something we cannot accept (bad
input from the network: refuse it, never crash); `LocalProtocolError` means
our own code tried to do something the protocol does not allow (a bug).
"""


class CcfarmError(Exception):
    """Root of every error ccfarm raises on purpose."""


class ProtocolError(CcfarmError):
    """The distcc or control protocol was violated."""


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes we refuse; the message says why."""


class LocalProtocolError(ProtocolError):
    """Our side tried to send something the protocol forbids."""


class HostFailure(CcfarmError):
    """A host could not run a job (not a compile error): try elsewhere or locally."""


class LeaseLost(HostFailure):
    """The scheduler revoked the job's lease (or dropped its connection) mid-attempt."""


class ConfigError(CcfarmError):
    """A configuration value (flag, variable or file) is invalid."""


__all__ = [
    "CcfarmError",
    "ConfigError",
    "HostFailure",
    "LeaseLost",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
]
