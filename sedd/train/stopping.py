"""Graceful stop on SIGTERM or SIGINT: the trainer finishes its step, checkpoints and exits."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequest:
    """Records a stop signal so the training loop can end at the next step boundary.

    ``install`` replaces the SIGTERM and SIGINT handlers and ``uninstall`` puts the previous
    ones back, so ``train()`` leaves no global state behind. A second SIGINT raises
    ``KeyboardInterrupt`` at once, for a user who does not want to wait for the checkpoint.
    Handlers can only be installed from the main thread; elsewhere ``install`` logs that
    signals are left to the caller, who can still call ``request``.
    """

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.signal_name is not None

    def request(self, reason: str) -> None:
        """Ask the loop to stop after the current step."""
        self.signal_name = reason

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            logger.info("not on the main thread: SIGTERM/SIGINT handlers not installed")
            return
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)

    def uninstall(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        logger.warning("received %s: stopping after the current step and writing a checkpoint", name)
        self.request(name)
