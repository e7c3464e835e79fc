"""Curve transforms the plots apply before drawing: smoothing, zoom to recent steps, log scale.

All of them work on ``(step, value)`` lists as the store returns them (``Store.metric_curve``)
and return new lists, so the cached raw points stay untouched between redraws.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Point = tuple[int, float]

# Zoom levels the monitor cycles through: the fraction of the step range that stays visible.
ZOOM_LEVELS = (1.0, 0.5, 0.2, 0.05)

# Smoothing weights the monitor cycles through. 0 draws the raw values.
SMOOTHING_LEVELS = (0.0, 0.6, 0.9, 0.98)


def smooth(points: Sequence[Point], weight: float) -> list[Point]:
    """Return an exponential moving average of the values with bias correction.

    ``weight`` in [0, 1) is the share of the previous average kept at each point. Dividing by
    ``1 - weight**n`` removes the pull towards zero of an average started at 0, so the first
    points are not drawn too low. Non-finite values are passed through without entering the
    average, so one ``nan`` does not erase the rest of the curve.
    """
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smoothing weight must be in [0, 1), got {weight}")
    if weight == 0.0:
        return list(points)
    smoothed: list[Point] = []
    average = 0.0
    count = 0
    for step, value in points:
        if not math.isfinite(value):
            smoothed.append((step, value))
            continue
        count += 1
        average = weight * average + (1.0 - weight) * value
        smoothed.append((step, average / (1.0 - weight**count)))
    return smoothed


def zoom_recent(points: Sequence[Point], fraction: float, last_step: int | None = None) -> list[Point]:
    """Return the points within the last ``fraction`` of the step range.

    The range ends at ``last_step`` when given (the latest step of any plotted curve, so train
    and validation curves zoom to the same window), else at the last point.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"zoom fraction must be in (0, 1], got {fraction}")
    if fraction == 1.0 or not points:
        return list(points)
    end = last_step if last_step is not None else points[-1][0]
    start = end - (end - points[0][0]) * fraction
    return [point for point in points if point[0] >= start]


def thin(points: Sequence[Point], max_points: int) -> list[Point]:
    """Return every k-th point, k chosen so at most ``max_points`` remain, keeping the first and the last.

    The same rule as ``Store.metric_curve``, so a cache that appends new points and thins
    itself keeps real logged values at a similar spacing.
    """
    if max_points < 2:
        raise ValueError(f"max_points must be at least 2 (first and last point), got {max_points}")
    if len(points) <= max_points:
        return list(points)
    stride = math.ceil((len(points) - 1) / (max_points - 1))
    last = len(points) - 1
    return [point for index, point in enumerate(points) if index % stride == 0 or index == last]


def append_new(cached: Sequence[Point], new: Sequence[Point], max_points: int) -> list[Point]:
    """Append the points of ``new`` later than the last cached step, thinning once the cache passes ``2 * max_points``.

    Points at or before the last cached step are dropped, so reading an overlapping window
    twice (two polls that raced) never duplicates a point.
    """
    last_step = cached[-1][0] if cached else None
    merged = list(cached) + [point for point in new if last_step is None or point[0] > last_step]
    return thin(merged, max_points) if len(merged) > 2 * max_points else merged


def log_safe(points: Sequence[Point]) -> list[Point]:
    """Return only the points a log axis can draw (finite and > 0)."""
    return [(step, value) for step, value in points if math.isfinite(value) and value > 0]


def finite(points: Sequence[Point]) -> list[Point]:
    """Return only the points with finite values. Plotext cannot place ``nan`` or ``inf``."""
    return [(step, value) for step, value in points if math.isfinite(value)]


def next_level(levels: Sequence[float], current: float) -> float:
    """Return the level after ``current`` in ``levels``, wrapping round to the first."""
    try:
        index = levels.index(current)
    except ValueError:
        return levels[0]
    return levels[(index + 1) % len(levels)]
