"""The records every part of ccfarm shares: compiler identities, host reports,
lease requests and what the scheduler answers them.

Scheduler, daemon, wrapper, gethost and the control codec all speak in
these; none of them owns them. Pure values: no I/O, no validation of
network input (the control codec validates before it builds one).
"""

from ccfarm.model.compiler import CompilerIdentity
from ccfarm.model.host import HostReport
from ccfarm.model.lease import LOCAL, LeaseGranted, LeaseRefused, LeaseRequest, LeaseRevoked

__all__ = [
    "LOCAL",
    "CompilerIdentity",
    "HostReport",
    "LeaseGranted",
    "LeaseRefused",
    "LeaseRequest",
    "LeaseRevoked",
]
