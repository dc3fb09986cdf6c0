"""Device functions the kernels share: flat-index arithmetic over strided views,
elementwise math with IEEE results, first-best comparisons and the semirings.

Under the simulator these stay plain Python (see device.device_function)."""
import math

import numpy as np

from ..base import UNARY_OPS, BINARY_OPS, SEMIRINGS
from .device import device_function


# ---- index arithmetic (device functions) --------------------------------------
def _offset_py(i, shape, strides):
    """Offset of the C-order flat index i in a view with `shape` and `strides`."""
    off = 0
    for d in range(len(shape) - 1, -1, -1):
        s = shape[d]
        off += (i % s) * strides[d]
        i //= s
    return off


def _offset2_py(i, shape, s1, s2):
    o1 = 0
    o2 = 0
    for d in range(len(shape) - 1, -1, -1):
        s = shape[d]
        q = i % s
        o1 += q * s1[d]
        o2 += q * s2[d]
        i //= s
    return o1, o2


def _offset3_py(i, shape, s1, s2, s3):
    o1 = 0
    o2 = 0
    o3 = 0
    for d in range(len(shape) - 1, -1, -1):
        s = shape[d]
        q = i % s
        o1 += q * s1[d]
        o2 += q * s2[d]
        o3 += q * s3[d]
        i //= s
    return o1, o2, o3


offset = device_function(_offset_py)
offset2 = device_function(_offset2_py)
offset3 = device_function(_offset3_py)


# ---- elementwise math (device functions) --------------------------------------
# The guards make the simulator (Python's math raises on log(0), exp(1000),
# sin(inf)) give the IEEE results a GPU gives.
def _neg(x):
    return -x


def _exp(x):
    if x > 709.7:
        return math.inf
    return math.exp(x)


def _log(x):
    if x > 0:
        return math.log(x)
    if x == 0:
        return -math.inf
    return math.nan


def _sin(x):
    if math.isinf(x):
        return math.nan
    return math.sin(x)


def _cos(x):
    if math.isinf(x):
        return math.nan
    return math.cos(x)


def _sqrt(x):
    if x >= 0:
        return math.sqrt(x)
    return math.nan


def _rsqrt(x):
    if x > 0:
        return 1 / math.sqrt(x)
    if x == 0:  # -0.0 gives -inf, as NumPy and torch
        return math.copysign(math.inf, x)
    return math.nan


def _relu(x):
    return 0 if x < 0 else x


def _sigmoid_py(x):
    if x >= 0:
        e = math.exp(-x)
        return 1 / (1 + e)
    e = math.exp(x)
    return e / (1 + e)


_sigmoid = device_function(_sigmoid_py)


def _erf(x):
    return math.erf(x)


def _tanh(x):
    return math.tanh(x)


def _silu(x):
    return x * _sigmoid(x)


def _abs(x):
    return abs(x)


def _sign(x):
    if x > 0:
        return 1
    if x < 0:
        return -1
    return x  # 0 or nan


def _add(x, y):
    return x + y


def _sub(x, y):
    return x - y


def _mul(x, y):
    return x * y


def _div(x, y):
    return x / y


def _pow(x, y):
    return x ** y


def _maximum(x, y):
    if x != x:
        return x
    if y != y:
        return y
    return x if x >= y else y


def _minimum(x, y):
    if x != x:
        return x
    if y != y:
        return y
    return x if x <= y else y


def _gt(x, y):
    return x > y


def _ge(x, y):
    return x >= y


def _lt(x, y):
    return x < y


def _le(x, y):
    return x <= y


def _eq(x, y):
    return x == y


def _ne(x, y):
    return x != y


# Numba's // and % follow Python (floor, the sign of y) on integers and floats, and
# CUDA's numpy error model gives inf / nan for a float divided by zero (the ops keep
# integer zeros out)
def _floor_divide(x, y):
    return x // y


def _remainder(x, y):
    return x % y


def _fmod(x, y):
    if y == 0 or math.isinf(x):  # C gives nan; Python's math.fmod (the simulator) raises
        return math.nan
    return math.fmod(x, y)


def _fmod_int(x, y):
    # C's fmod from Python's %: where their signs differ the two differ by y
    r = x % y
    if r != 0 and (r < 0) != (x < 0):
        r -= y
    return r


UNARY = {name: device_function(f) for name, f in {
    "neg": _neg, "exp": _exp, "log": _log, "sin": _sin, "cos": _cos, "sqrt": _sqrt,
    "rsqrt": _rsqrt, "relu": _relu, "sigmoid": _sigmoid, "tanh": _tanh, "silu": _silu,
    "abs": _abs, "sign": _sign, "erf": _erf}.items()}
BINARY = {name: device_function(f) for name, f in {
    "add": _add, "sub": _sub, "mul": _mul, "div": _div, "pow": _pow,
    "maximum": _maximum, "minimum": _minimum, "gt": _gt, "ge": _ge, "lt": _lt,
    "le": _le, "eq": _eq, "ne": _ne, "floor_divide": _floor_divide, "remainder": _remainder,
    "fmod": _fmod}.items()}
assert set(UNARY) == set(UNARY_OPS) and set(BINARY) == set(BINARY_OPS)
BINARY["fmod_int"] = device_function(_fmod_int)  # the backend's fmod on integer dtypes
exp, log = UNARY["exp"], UNARY["log"]

def _first_better(beats):
    """better(v, i, bv, bi): does v at index i replace the best so far, bv at bi? For a
    first maximum (beats: >) or first minimum (<) with NumPy's NaN rule (NaN wins, the
    first NaN); i < 0 is nothing, bi < 0 no best yet; ties keep the lower index."""
    def better(v, i, bv, bi):
        if i < 0:
            return False
        if bi < 0:
            return True
        if bv != bv:
            return v != v and i < bi
        if v != v:
            return True
        return beats(v, bv) or (v == bv and i < bi)
    return device_function(better)


BETTER = {"max": _first_better(BINARY["gt"]), "min": _first_better(BINARY["lt"])}


# tropical semirings: combine (⊗) and strict "better" (⊕ picks the better, ties keep the first)
def _tgt(x, y):
    return x > y


def _tlt(x, y):
    return x < y


SEMIRING = {
    "max_plus": (device_function(_add), device_function(_tgt), -np.inf),
    "min_plus": (device_function(_add), device_function(_tlt), np.inf),
    "max_mul": (device_function(_mul), device_function(_tgt), 0.0),
}
assert set(SEMIRING) == set(SEMIRINGS)

