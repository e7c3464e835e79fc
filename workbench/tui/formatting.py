"""Text forms of store values for tables and panels: ages, losses, rates, steps, devices.

Every function returns a short plain string, and ``-`` where the value is missing, so a
table cell never shows ``None``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

MISSING = "-"


def format_age(then: datetime | None, now: datetime) -> str:
    """Return how long ago ``then`` was, in the largest whole unit: ``42s``, ``5m``, ``3h``, ``2d``."""
    if then is None:
        return MISSING
    return format_duration((now - then).total_seconds())


def format_duration(seconds: float | None) -> str:
    """Return a duration in its largest whole unit. Negative durations (clock skew) read ``0s``."""
    if seconds is None or not math.isfinite(seconds):
        return MISSING
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def format_eta(seconds: float | None) -> str:
    """Return a remaining time as ``1h05m``, ``12m30s`` or ``40s``."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return MISSING
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def format_loss(value: float | None) -> str:
    """Return a loss in nats per token with four significant digits."""
    if value is None:
        return MISSING
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4g}"


def format_number(value: float | None) -> str:
    """Return any metric value compactly: four significant digits, exponent form when tiny."""
    if value is None:
        return MISSING
    if not math.isfinite(value):
        return str(value)
    if value != 0 and abs(value) < 1e-3:
        return f"{value:.2e}"
    return f"{value:.4g}"


def format_rate(value: float | None) -> str:
    """Return a throughput with a k or M suffix: ``950``, ``12.3k``, ``1.25M``."""
    if value is None or not math.isfinite(value):
        return MISSING
    if value >= 1e6:
        return f"{value / 1e6:.3g}M"
    if value >= 1e3:
        return f"{value / 1e3:.3g}k"
    return f"{value:.0f}"


def format_step(step: int | None, total: int | None) -> str:
    """Return ``step/total``, or the step alone when the total is unknown."""
    if step is None:
        return MISSING
    return f"{step}/{total}" if total else str(step)


def format_devices(devices: Sequence[Any] | None) -> str:
    """Return the GPU indices of a run as ``gpu0,1``, ``cpu`` when it has none."""
    if devices is None:
        return MISSING
    if not devices:
        return "cpu"
    return "gpu" + ",".join(str(device) for device in devices)


def format_tags(tags: Sequence[Any] | None) -> str:
    """Return tags joined by commas."""
    return ",".join(str(tag) for tag in tags) if tags else ""


def format_bytes(count: float | None) -> str:
    """Return a byte count in binary units: ``512B``, ``3.2GiB``."""
    if count is None:
        return MISSING
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(count) < 1024:
            return f"{count:.0f}{unit}" if unit == "B" else f"{count:.1f}{unit}"
        count /= 1024
    return f"{count:.1f}TiB"
