"""The event loop the gateway's commands run on: uvloop's when it is installed.

uvloop (the optional ``speed`` extra) runs the same asyncio code with a loop written in C;
without it the standard loop serves, so nothing depends on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, on uvloop's loop when uvloop is importable."""
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(main)
