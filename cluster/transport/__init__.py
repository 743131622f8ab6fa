"""Ways to reach a host: SSH (asyncssh) and local subprocesses, behind one interface."""

from cluster.transport.base import CommandResult, Transport, UploadReport
from cluster.transport.pool import Connections

__all__ = ["CommandResult", "Connections", "Transport", "UploadReport"]
