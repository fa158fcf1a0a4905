"""Argument checks shared by the public constructors: one wording everywhere."""

from __future__ import annotations

import operator

__all__ = ["positive_int", "int_between"]


def _integer(value, name: str) -> int:
    """``value`` as an int: TypeError for non-integers, bool too."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not bool")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, not {type(value).__name__}") from None


def positive_int(value, name: str) -> int:
    """``value`` as an int > 0: TypeError for non-integers (bool too), else ValueError."""
    number = _integer(value, name)
    if number <= 0:
        raise ValueError(f"{name} must be greater than 0, got {number}")
    return number


def int_between(value, name: str, low: int, high: int) -> int:
    """``value`` as an int in ``low..high``: TypeError for non-integers (bool too), else ValueError."""
    number = _integer(value, name)
    if not low <= number <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {number}")
    return number
