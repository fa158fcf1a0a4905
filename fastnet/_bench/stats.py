"""Medians and spreads of a figure measured in several rounds, and whether a ratio means anything.

A figure is summarised as its median with its minimum and maximum over the
rounds (with three rounds, the range is all there is to say about spread).
The median is always one round's value (for an even count, the lower of the
two middle ones), so a row's figures all come from measurements that happened.
A ratio is *not significant* when its range is at least as wide as its
distance from 1.0x: the rounds disagree more than the ratio differs from
parity, so the reader cannot tell the two sides apart.
"""

from __future__ import annotations

import statistics
from typing import List, Optional, Sequence, Tuple

__all__ = ["Summary", "summarise", "significant", "median_index"]

Summary = Tuple[Optional[float], Optional[float], Optional[float]]


def summarise(values: Sequence[Optional[float]]) -> Summary:
    """(median, min, max) of the values that are not None; Nones if there are none."""
    present: List[float] = [float(value) for value in values if value is not None]
    if not present:
        return None, None, None
    return statistics.median_low(present), min(present), max(present)


def significant(summary: Summary, rounds: int) -> Optional[bool]:
    """Whether a ratio's (median, min, max) over ``rounds`` tells it apart from 1.0x.

    None with fewer than two rounds: there is no spread to judge by.
    """
    middle, low, high = summary
    if middle is None or low is None or high is None or rounds < 2:
        return None
    return (high - low) < abs(middle - 1.0)


def median_index(values: Sequence[Optional[float]]) -> Optional[int]:
    """Index of the lower-median value (a real round, not an average of two), or None."""
    present = sorted((value, index) for index, value in enumerate(values) if value is not None)
    if not present:
        return None
    return present[(len(present) - 1) // 2][1]
