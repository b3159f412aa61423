"""Logging through the standard :mod:`logging` module, routed to the host's
``flotilla:types/log`` import: lines land in the hub's or agent's log, tagged with the
plugin's name (the host bounds how many lines and bytes one call may log).

Importing a world module (``flotilla_sdk.placement_filter``...) installs :class:`HostHandler`
on the root logger, so a plugin
just uses ``logging.getLogger(__name__).info(...)``. ``print`` works too: the SDK routes
``sys.stdout`` to ``info`` and ``sys.stderr`` to ``warn`` (a Python component has no real
standard streams: the SDK builds it with WASI stubbed out).
"""

from __future__ import annotations

import io
import logging
import sys
import time as _time
from typing import Any

__all__ = ["TRACE", "HostHandler", "install", "logger"]

#: A level below DEBUG, the host's ``trace``.
TRACE = 5
logging.addLevelName(TRACE, "TRACE")

#: The SDK's own logger; plugins use ``logging.getLogger(__name__)``.
logger = logging.getLogger("flotilla_sdk")


def _host_log() -> Any:
    # Imported on first use: the bindings exist only inside the component.
    from wit_world.imports import log as wit_log

    return wit_log


class HostHandler(logging.Handler):
    """Sends each record to the host's log at the matching level."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            wit_log = _host_log()
            level = record.levelno
            if level < logging.DEBUG:
                wit_level = wit_log.Level.TRACE
            elif level < logging.INFO:
                wit_level = wit_log.Level.DEBUG
            elif level < logging.WARNING:
                wit_level = wit_log.Level.INFO
            elif level < logging.ERROR:
                wit_level = wit_log.Level.WARN
            else:
                wit_level = wit_log.Level.ERROR
            wit_log.log(wit_level, self.format(record))
        except Exception:  # a log line must never fail the call
            pass


class _LogStream(io.TextIOBase):
    """A text stream whose lines go to a logger (``print`` inside a component)."""

    def __init__(self, level: int) -> None:
        self._level = level
        self._buffer = ""

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        self._buffer += s
        while "\n" in self._buffer:
            line, self._buffer = self._buffer.split("\n", 1)
            logging.getLogger("stdout" if self._level == logging.INFO else "stderr").log(self._level, line)
        return len(s)

    def flush(self) -> None:
        if self._buffer:
            line, self._buffer = self._buffer, ""
            logging.getLogger("stdout").log(self._level, line)


class _ZeroClock:
    """What :mod:`logging` sees as its ``time`` module: a clock fixed at 0.

    The component is built with WASI stubbed out (``--stub-wasi``), so reading the real clock
    traps; the host's log line carries the time instead. Deterministic worlds have no clock
    at all."""

    def __getattr__(self, name: str) -> Any:
        return getattr(_time, name)

    @staticmethod
    def time() -> float:
        return 0.0

    @staticmethod
    def time_ns() -> int:
        return 0


_installed = False


def install(level: int = logging.DEBUG) -> None:
    """Routes the root logger (at ``level``) and ``sys.stdout``/``sys.stderr`` to the host.
    Called when a world module is imported; idempotent."""
    global _installed
    if _installed:
        return
    _installed = True
    logging.time = _ZeroClock()  # type: ignore[attr-defined]
    logging._startTime = 0  # type: ignore[attr-defined]
    root = logging.getLogger()
    handler = HostHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    root.handlers[:] = [handler]
    root.setLevel(level)
    sys.stdout = _LogStream(logging.INFO)
    sys.stderr = _LogStream(logging.WARNING)
