"""Reaching the real services. Under CI=true a missing service is a failure, never a skip."""

from __future__ import annotations

import os
import socket

import pytest

RABBITMQ = ("127.0.0.1", 5672)
POSTGRES = ("127.0.0.1", 5432)
ADMIN_URL = "amqp://guest:guest@127.0.0.1:5672/{vhost}"


def reachable(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=2):
            return True
    except OSError:
        return False


def require(address: tuple[str, int], name: str) -> None:
    if reachable(address):
        return
    message = f"{name} is not answering on {address[0]}:{address[1]} (run deploy/local/services.sh)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)
