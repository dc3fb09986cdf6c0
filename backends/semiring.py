"""Semirings: each Semiring object owns its ⊕ (plus), ⊗ (times), zero and one.

    max_plus (max, +)   min_plus (min, +)   max_mul (max, ×; inputs >= 0)

are built in: adding one is one line in BUILTIN below. Every backend runs every
semiring: `Backend.tropical_matmul(a, b, semiring)` uses the fast kernel a backend
registers for it (`Backend.semiring_kernel`) and otherwise `generic_matmul`, which
is built from the backend's own primitives.

Two kinds of semiring:

* selective (the built-ins and `Semiring(name, plus="max"|"min", times=..., zero,
  one)`): an element is one number; ⊕ picks one of its arguments, so a product
  can report which index won (the argmax that routes gradients);
* compound: an element is several arrays (say a value and a count). Subclass
  Semiring, set `arity`, `zero` and `one` (tuples, one entry per array), and define
  `add` (⊕) and `mul` (⊗) on tuples of backend arrays; `sum` (⊕ over an axis) and
  `matmul` have generic defaults built from those two. See docs/tropical.md.
"""
import math

import numpy as np

TIMES = ("add", "mul", "minimum", "maximum")


class Semiring:
    """A semiring for tropical_einsum.

    Selective form: Semiring(name, plus, times, zero, one, nonnegative=False) with
    plus "max" or "min" and times a backend binary op ("add", "mul", "minimum",
    "maximum"); zero is ⊕'s identity (−inf for max), one ⊗'s identity;
    nonnegative: inputs must be >= 0 (checked, ValueError).

    Compound form: subclass, set `arity` > 1 and call
    ``super().__init__(name, zero=(...), one=(...))``, then define add / mul (and
    dtypes if the arrays differ in dtype). Elements are then tuples of `arity`
    backend arrays of one shape."""

    arity = 1

    def __init__(self, name, plus=None, times=None, zero=None, one=None, nonnegative=False):
        if not isinstance(name, str) or not name:
            raise TypeError(f"Semiring: name must be a non-empty string, got {name!r}")
        self.name = name
        self.nonnegative = bool(nonnegative)
        if self.arity == 1:
            if plus not in ("max", "min"):
                raise ValueError(f"Semiring {name!r}: plus must be 'max' or 'min' (a selective "
                                 f"⊕, so that the winning index routes gradients), got {plus!r}; "
                                 "for another ⊕ subclass Semiring and define add and mul")
            if times not in TIMES:
                raise ValueError(f"Semiring {name!r}: times must be one of {TIMES}, got {times!r}")
            if zero is None or one is None:
                raise ValueError(f"Semiring {name!r}: zero and one are required")
            self.plus, self.times = plus, times
            self.zero, self.one = float(zero), float(one)
        else:
            if type(self).add is Semiring.add or type(self).mul is Semiring.mul:
                raise TypeError(f"Semiring {name!r}: a compound semiring (arity {self.arity}) "
                                "must define add(backend, x, y) and mul(backend, x, y)")
            if zero is None or one is None or len(zero) != self.arity or len(one) != self.arity:
                raise ValueError(f"Semiring {name!r}: zero and one must be tuples of "
                                 f"{self.arity} numbers (one per array of an element)")
            self.plus = self.times = None
            self.zero, self.one = tuple(zero), tuple(one)

    @property
    def selective(self):
        """True when ⊕ picks one of its arguments (max or min): a product can report
        which index won, and tropical_einsum is differentiable."""
        return self.arity == 1

    def __repr__(self):
        if self.selective:
            return (f"Semiring({self.name!r}, plus={self.plus!r}, times={self.times!r}, "
                    f"zero={self.zero}, one={self.one})")
        return f"<{type(self).__name__} {self.name!r}: elements of {self.arity} arrays>"

    # ---- elements (tuples of `arity` backend arrays; one array when arity is 1)
    def dtypes(self, dtype):
        """The dtypes of an element's arrays, given the value dtype."""
        return (np.dtype(dtype),) * self.arity

    def full(self, backend, shape, which, dtype):
        """An element of `shape` filled with the semiring's zero or one (which)."""
        values = getattr(self, which)
        if self.arity == 1:
            return backend.full(shape, values, np.dtype(dtype))
        return tuple(backend.full(shape, v, dt) for v, dt in zip(values, self.dtypes(dtype)))

    def add(self, backend, x, y):
        """x ⊕ y elementwise (broadcasting). Selective: the better one; ties keep x."""
        better = "gt" if self.plus == "max" else "lt"
        return backend.where(backend.binary(better, y, x), y, x)

    def mul(self, backend, x, y):
        """x ⊗ y elementwise (broadcasting)."""
        return backend.binary(self.times, x, y)

    def sum(self, backend, x, axis):
        """⊕ over one axis. Compound default: a pairwise fold of add."""
        if self.selective:
            return backend.max(x, axis=axis) if self.plus == "max" else backend.min(x, axis=axis)
        return _fold(self, backend, x, axis)

    # ---- selective only: winners
    def reduce_last(self, backend, a):
        """(⊕ over the last axis, index of the winner (lowest on ties; a NaN wins))."""
        if self.plus == "max":
            return backend.max(a, axis=-1), backend.argmax(a, axis=-1)
        return backend.min(a, axis=-1), backend.argmax(backend.unary("neg", a), axis=-1)

    def times_grads(self, backend, x, y, g):
        """(g·∂(x⊗y)/∂x, g·∂(x⊗y)/∂y) at the winning factors x, y."""
        if self.times == "add":
            return g, g
        if self.times == "mul":
            return backend.binary("mul", g, y), backend.binary("mul", g, x)
        # minimum / maximum: the factor that is the result gets it (x on ties)
        x_wins = backend.binary("le" if self.times == "minimum" else "ge", x, y)
        zero = backend.full((), 0, g.dtype)
        return backend.where(x_wins, g, zero), backend.where(x_wins, zero, g)

    # ---- products
    def matmul(self, backend, a, b):
        """The batched product (B, n, k) ⊗ (B, k, m). Selective: (c, winning k, lowest
        on ties); compound: the element c (no winners)."""
        if self.selective:
            return backend.tropical_matmul(a, b, self)
        return generic_compound_matmul(backend, a, b, self)


# One line per built-in semiring.
BUILTIN = {
    "max_plus": Semiring("max_plus", "max", "add", -math.inf, 0.0),
    "min_plus": Semiring("min_plus", "min", "add", math.inf, 0.0),
    "max_mul": Semiring("max_mul", "max", "mul", 0.0, 1.0, nonnegative=True),
}
_REGISTRY = dict(BUILTIN)


def register_semiring(semiring):
    """Make `semiring` (a Semiring) available as tropical_einsum(..., semiring=name).
    Built-in names cannot be replaced; registering the same name again replaces it."""
    if not isinstance(semiring, Semiring):
        raise TypeError(f"register_semiring: expected a Semiring, got {type(semiring).__name__}")
    if semiring.name in BUILTIN:
        raise ValueError(f"register_semiring: {semiring.name!r} is built in and cannot be "
                         "replaced; choose another name")
    _REGISTRY[semiring.name] = semiring
    return semiring


def semirings():
    """Names of the semirings tropical_einsum accepts."""
    return tuple(_REGISTRY)


def get_semiring(semiring, who="tropical_einsum"):
    """The Semiring for a name (or the Semiring itself)."""
    if isinstance(semiring, Semiring):
        return semiring
    if not isinstance(semiring, str) or semiring not in _REGISTRY:
        raise ValueError(f"{who}: unknown semiring {semiring!r}; expected one of "
                         f"{list(_REGISTRY)} (or register one with register_semiring)")
    return _REGISTRY[semiring]


# ============================================================================ generic kernels

def may_give_nan(backend, a, b, semiring):
    """True when some candidate a[i, l] ⊗ b[l, j] of a selective semiring can be NaN:
    a NaN input, +inf and -inf added, or 0 times an infinity. Backend primitives only
    (a compiled kernel that skips the NaN rule checks this first)."""
    def has(x, test):
        if 0 in tuple(x.shape):
            return False
        if test == "nan":
            mask = backend.binary("ne", x, x)
        elif test == "zero":
            mask = backend.binary("eq", x, 0)
        else:
            mask = backend.binary("eq", x, math.inf if test == "+inf" else -math.inf)
        return bool(backend.to_numpy(backend.max(backend.where(mask, 1.0, 0.0))) > 0)

    if has(a, "nan") or has(b, "nan"):
        return True
    if semiring.times == "add":
        return ((has(a, "+inf") and has(b, "-inf")) or (has(a, "-inf") and has(b, "+inf")))
    if semiring.times == "mul":
        a_inf = has(a, "+inf") or has(a, "-inf")
        b_inf = has(b, "+inf") or has(b, "-inf")
        return (a_inf and has(b, "zero")) or (has(a, "zero") and b_inf)
    return False   # minimum / maximum of non-NaN numbers is never NaN


def generic_matmul(backend, a, b, semiring, block_elements=1 << 22):
    """Tropical batched matmul of a selective semiring from backend primitives, blocked
    over k so that memory stays O(B·n·m + block): (c, arg), ties -> lowest k, a NaN
    candidate wins (the first one)."""
    nb, n, k = a.shape
    m = b.shape[2]
    dtype = np.result_type(a.dtype, b.dtype)
    if k == 0:
        return (backend.full((nb, n, m), semiring.zero, dtype),
                backend.full((nb, n, m), 0, np.dtype(np.int64)))
    block = max(1, min(k, block_elements // max(1, nb * n * m)))
    better = "gt" if semiring.plus == "max" else "lt"
    best = arg = None
    for start in range(0, k, block):
        stop = min(k, start + block)
        left = backend.getitem(a, (slice(None), slice(None), slice(start, stop), None))
        right = backend.getitem(b, (slice(None), None, slice(start, stop), slice(None)))
        cand = backend.binary(semiring.times, left, right)            # (B, n, block, m)
        cand = backend.transpose(cand, (0, 1, 3, 2))                  # (B, n, m, block)
        value, pick = semiring.reduce_last(backend, cand)
        if start == 0:
            best, arg = value, pick
            continue
        # strict: earlier blocks keep ties; a NaN beats anything but an earlier NaN
        won = backend.where(backend.binary("ne", value, value), backend.binary("eq", best, best),
                            backend.binary(better, value, best))
        best = backend.where(won, value, best)
        arg = backend.where(won, backend.binary("add", pick, start), arg)
    return best, arg


def generic_compound_matmul(backend, a, b, semiring, block_elements=1 << 22):
    """The product of a compound semiring: elements a (B, n, k) and b (B, k, m) (tuples
    of arrays), blocked over k; each block is ⊗ then ⊕ over k, blocks combined by ⊕."""
    nb, n, k = a[0].shape
    m = b[0].shape[2]
    if k == 0:
        dtype = a[0].dtype
        return semiring.full(backend, (nb, n, m), "zero", dtype)
    block = max(1, min(k, block_elements // max(1, nb * n * m)))
    best = None
    for start in range(0, k, block):
        stop = min(k, start + block)
        left = tuple(backend.getitem(x, (slice(None), slice(None), slice(start, stop), None))
                     for x in a)
        right = tuple(backend.getitem(x, (slice(None), None, slice(start, stop), slice(None)))
                      for x in b)
        part = semiring.sum(backend, semiring.mul(backend, left, right), 2)
        best = part if best is None else semiring.add(backend, best, part)
    return best


def _fold(semiring, backend, x, axis):
    """⊕ over `axis` by pairwise halving (log depth): for compound semirings without a
    reduction of their own."""
    ndim = len(x[0].shape)
    axis = axis % ndim
    length = x[0].shape[axis]
    if length == 0:
        shape = x[0].shape[:axis] + x[0].shape[axis + 1:]
        return semiring.full(backend, shape, "zero", x[0].dtype)

    def part(t, lo, hi):
        key = (slice(None),) * axis + (slice(lo, hi),)
        return tuple(backend.getitem(c, key) for c in t)

    while length > 1:
        half = length // 2
        head = semiring.add(backend, part(x, 0, half), part(x, half, 2 * half))
        if length % 2:
            x = tuple(backend.cat([h, r], axis) for h, r in zip(head, part(x, 2 * half, length)))
        else:
            x = head
        length = x[0].shape[axis]
    key = (slice(None),) * axis + (0,)
    return tuple(backend.getitem(c, key) for c in x)
