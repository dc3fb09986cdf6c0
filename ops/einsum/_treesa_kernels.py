"""The compiled inner loops of TreeSA (treesa.py): label sets are rows of uint64 words.

A tree has nodes 0..n-1 (leaves, left = right = -1) and n..2n-2 (contractions, the
root last); bits[node] is the label set of the node's tensor."""
import math

import numpy as np
from numba import njit

_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)


@njit(cache=True, nogil=True)
def _popcount(x):
    x = x - ((x >> np.uint64(1)) & _M1)
    x = (x & _M2) + ((x >> np.uint64(2)) & _M2)
    x = (x + (x >> np.uint64(4))) & _M4
    return (x * _H01) >> np.uint64(56)


@njit(cache=True, nogil=True)
def _size(x, masks, logs):
    """log2 of the size of label set x."""
    total = 0.0
    for g in range(masks.shape[0]):
        c = 0
        for k in range(x.shape[0]):
            c += _popcount(x[k] & masks[g, k])
        total += c * logs[g]
    return total


@njit(cache=True, nogil=True)
def _size_and_not(x, y, z, masks, logs):
    """log2 size of x & y & ~z."""
    total = 0.0
    for g in range(masks.shape[0]):
        c = 0
        for k in range(x.shape[0]):
            c += _popcount(x[k] & y[k] & ~z[k] & masks[g, k])
        total += c * logs[g]
    return total


# log2(1 + 2^-x) at x = i / 16, for log2(2^a + 2^b) without a log and an exp per call
# (linear interpolation: error below 1e-4 in log2 units, far finer than a move's dE)
_LSE_STEP = 16.0
_LSE_TABLE = np.log2(1.0 + 2.0 ** (-np.arange(64 * 16 + 2) / 16.0))


@njit(cache=True, nogil=True)
def _lse(a, b):
    hi = max(a, b)
    lo = min(a, b)
    x = (hi - lo) * _LSE_STEP
    if not x < 64 * _LSE_STEP:   # also lo = -inf
        return hi
    i = int(x)
    f = x - i
    return hi + _LSE_TABLE[i] + f * (_LSE_TABLE[i + 1] - _LSE_TABLE[i])


@njit(cache=True, nogil=True)
def _lse3(a, b, c):
    return _lse(_lse(a, b), c)


@njit(cache=True, nogil=True)
def _next(state):
    """xorshift64*: a uint64 from the generator state (a 1-element uint64 array)."""
    x = state[0]
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    state[0] = x
    return x * np.uint64(0x2545F4914F6CDD1D)


@njit(cache=True, nogil=True)
def _uniform(state):
    return (_next(state) >> np.uint64(11)) * (1.0 / 9007199254740992.0)


def rng_state(seed):
    """A generator state for `seed` (splitmix64 of it, never zero)."""
    z = (int(seed) * 0x9E3779B97F4A7C15 + 0x9E3779B97F4A7C15) % (1 << 64)
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % (1 << 64)
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % (1 << 64)
    z ^= z >> 31
    return np.array([z or 1], np.uint64)


@njit(cache=True, nogil=True)
def node_labels(left, right, leaf_bits, out_bits):
    """bits of every node: leaves as given; a contraction keeps the labels of its
    subtree that are needed outside it (in the output or in another subtree)."""
    total = left.shape[0]
    n = leaf_bits.shape[0]
    words = leaf_bits.shape[1]
    union = np.zeros((total, words), np.uint64)
    union[:n] = leaf_bits
    for t in range(n, total):            # children come before parents
        for k in range(words):
            union[t, k] = union[left[t], k] | union[right[t], k]
    bits = np.zeros((total, words), np.uint64)
    root = total - 1
    for k in range(words):
        bits[root, k] = union[root, k] & out_bits[k]
    for t in range(total - 1, n - 1, -1):  # parents before children
        a, b = left[t], right[t]
        for k in range(words):
            bits[a, k] = union[a, k] & (bits[t, k] | union[b, k])
            bits[b, k] = union[b, k] & (bits[t, k] | union[a, k])
    bits[:n] = leaf_bits
    return bits


@njit(cache=True, nogil=True)
def node_costs(left, right, bits, masks, logs):
    """Per node: log2 size of its tensor; for a contraction node, log2 of its time
    (the joint index space of its children) and of its read-write (output + inputs)."""
    total = left.shape[0]
    sz = np.empty(total)
    tc = np.full(total, -np.inf)
    rw = np.full(total, -np.inf)
    for t in range(total):
        sz[t] = _size(bits[t], masks, logs)
    for t in range(total):
        if left[t] >= 0:
            a, b = left[t], right[t]
            tc[t] = sz[t] + _size_and_not(bits[a], bits[b], bits[t], masks, logs)
            rw[t] = _lse3(sz[t], sz[a], sz[b])
    return sz, tc, rw


@njit(cache=True, nogil=True)
def tree_cost(left, right, bits, masks, logs):
    """(log2 of the operation count, log2 of the largest tensor) of the tree."""
    sz, tc, _ = node_costs(left, right, bits, masks, logs)
    total = -np.inf
    for t in range(left.shape[0]):
        total = _lse(total, tc[t])
    return total, sz.max()


@njit(cache=True, nogil=True)
def _try_move(t, left, right, bits, sz, tcs, rws, masks, logs, beta, sc_target, sc_weight,
              log2rw, ac, state):
    a_is_leaf = left[left[t]] < 0
    b_is_leaf = left[right[t]] < 0
    if a_is_leaf and b_is_leaf:
        return
    if b_is_leaf:
        rule = 1 + int(_next(state) >> np.uint64(63))
    elif a_is_leaf:
        rule = 3 + int(_next(state) >> np.uint64(63))
    else:
        rule = 1 + int(_next(state) >> np.uint64(62))
    L, R = left[t], right[t]
    if rule == 1:      # ((a, b), c) -> ((a, c), b)
        ab, a, b, c = L, left[L], right[L], R
    elif rule == 2:    # ((a, b), c) -> ((c, b), a)
        ab, a, b, c = L, right[L], left[L], R
    elif rule == 3:    # (a, (b, c)) -> (b, (a, c))
        ab, a, b, c = R, right[R], left[R], L
    else:              # (a, (b, c)) -> (c, (b, a))
        ab, a, b, c = R, left[R], right[R], L
    d = t
    for k in range(ac.shape[0]):
        ac[k] = (bits[a, k] | bits[c, k]) & (bits[b, k] | bits[d, k])
    # before: (a, b) -> ab, (ab, c) -> d; after: (a, c) -> ac, (ac, b) -> d
    sc0 = max(sz[ab], sz[d])
    sz_ac = _size(ac, masks, logs)
    tc_ac = sz_ac + _size_and_not(bits[a], bits[c], ac, masks, logs)
    tc_d = sz[d] + _size_and_not(ac, bits[b], bits[d], masks, logs)
    rw_ac = _lse3(sz_ac, sz[a], sz[c])
    rw_d = _lse3(sz[d], sz_ac, sz[b])
    sc1 = max(sz_ac, sz[d])
    tc0, tc1 = _lse(tcs[ab], tcs[d]), _lse(tc_ac, tc_d)
    if log2rw > -np.inf:
        dtc = (_lse(tc1, log2rw + _lse(rw_ac, rw_d))
               - _lse(tc0, log2rw + _lse(rws[ab], rws[d])))
    else:
        dtc = tc1 - tc0
    dsc = sc1 - sc0
    de = (sc_weight if max(sc0, sc1) > sc_target else 0.0) * dsc + dtc
    if de <= 0 or _uniform(state) < math.exp(-beta * de):
        # the rotated child now contracts (a, c); its old sibling slot takes b
        left[ab] = a
        right[ab] = c
        if rule <= 2:
            right[t] = b
        else:
            left[t] = b
        for k in range(ac.shape[0]):
            bits[ab, k] = ac[k]
        sz[ab], tcs[ab], rws[ab] = sz_ac, tc_ac, rw_ac
        tcs[d], rws[d] = tc_d, rw_d


@njit(cache=True, nogil=True)
def sweeps(left, right, bits, sz, tcs, rws, masks, logs, beta, niters, sc_target, sc_weight,
           log2rw, stack, ac, state):
    """`niters` sweeps at inverse temperature beta: every contraction node, top-down
    (pre-order), tries one random rotation. sz, tcs, rws: node_costs, kept current."""
    root = left.shape[0] - 1
    for _ in range(niters):
        top = 0
        stack[top] = root
        top += 1
        while top > 0:
            top -= 1
            t = stack[top]
            if left[t] < 0:
                continue
            _try_move(t, left, right, bits, sz, tcs, rws, masks, logs, beta, sc_target,
                      sc_weight, log2rw, ac, state)
            stack[top] = right[t]
            top += 1
            stack[top] = left[t]
            top += 1
