"""The operator console: server-rendered pages at ``/`` on the gateway's HTTP port.

It shows and acts only through :class:`gateway.desk.operations.Desk`, the code the CLI calls.
"""
