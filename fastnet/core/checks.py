"""Argument checks shared by the public constructors: one wording everywhere."""

from __future__ import annotations

import operator

__all__ = ["positive_int"]


def positive_int(value, name: str) -> int:
    """``value`` as an int > 0: TypeError for non-integers (bool too), else ValueError."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not bool")
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, not {type(value).__name__}") from None
    if number <= 0:
        raise ValueError(f"{name} must be greater than 0, got {number}")
    return number
