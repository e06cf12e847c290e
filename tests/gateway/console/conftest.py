"""The console rig's fixtures, for every test in this folder."""

from tests.gateway.console.rig import archive, client

__all__ = ["archive", "client"]
