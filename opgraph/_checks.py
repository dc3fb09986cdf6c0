"""Argument checks shared by the layers and the optimizers: a bad size or hyper-parameter
is an error at construction that names the class, the argument and the value."""
import math
import numbers

import numpy as np


def size(owner, what, value, allow_zero=False):
    """A layer size (features, channels, embeddings) as an int: positive (or >= 0)."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{owner}: {what} must be an int, got {type(value).__name__} {value!r}")
    low = 0 if allow_zero else 1
    if value < low:
        raise ValueError(f"{owner}: {what} must be {'>= 0' if allow_zero else 'positive'}, got "
                         f"{value}")
    return int(value)


def sizes(owner, what, value, n, allow_zero=False):
    """An int or a sequence of n ints (a kernel size, a stride), each checked by size()."""
    parts = tuple(value) if isinstance(value, (tuple, list)) else (value,) * n
    if len(parts) != n:
        raise ValueError(f"{owner}: {what} must be an int or {n} ints, got {value!r}")
    return tuple(size(owner, what, v, allow_zero) for v in parts)


def number(owner, what, value, low=None, high=None, low_open=False, high_open=False):
    """A real hyper-parameter as a Python float (NumPy scalars too, so that they never
    promote float32 data): NaN, non-numbers and values outside the range are errors."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"{owner}: {what} must be a number, got {type(value).__name__} "
                        f"{value!r}")
    value = float(value)
    below = low is not None and (value < low or (low_open and value == low))
    above = high is not None and (value > high or (high_open and value == high))
    if math.isnan(value) or below or above:
        left = ("(" if low_open else "[") + (f"{low:g}" if low is not None else "-inf")
        right = (f"{high:g}" if high is not None else "inf") + (")" if high_open else "]")
        raise ValueError(f"{owner}: {what} must be in {left}, {right}, got {value!r}")
    return value
