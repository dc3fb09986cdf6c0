"""Tree simulated annealing (TreeSA) for contraction orders.

After Kalachev, Panteleev, Zhou, Yung, "Recursive multi-tensor contraction for XEB
verification of quantum circuits" (arXiv 2108.05665), the optimizer behind
OMEinsumContractionOrders.jl / GenericTensorNetworks.jl. A contraction order is a
binary tree whose leaves are the tensors. One local move rotates a node and one
grandchild: ((a, b), c) -> ((a, c), b) or ((c, b), a), and the mirror images for a
right child; only the rotated child's intermediate changes, so a move is priced
from five label sets. A sweep visits every node top-down and tries one random move
there, accepted with probability exp(-beta * dE), where

    dE = sc_weight * d(space)   [only while the local space is above sc_target]
         + d(log2(time + rw_weight * read-write))

in log2 units; beta rises along a schedule. Each trial starts from the greedy
tree; the best final tree over the trials wins, by largest intermediate first and
operation count second. Label sets are bitsets (uint64 words) and the sweeps are
compiled with Numba, so a trial of 15,000 sweeps over a 300-tensor network takes
about a second.

Preprocessing: a tensor whose labels are a subset of another tensor's is
contracted into it first (that never grows a tensor), which removes e.g. every
vertex tensor of a graph problem from the search.
"""
import math
import os
import time

import numpy as np

from .path import PathTooLarge, _entries_text, _size, greedy_path, path_to_ssa, ssa_to_path


class TreeSA:
    """optimize=TreeSA(...) for einsum, tropical_einsum and the tropical solvers.

    seed: the random seed (the result is a function of the seed, the network and the
    settings below, unless time_limit cuts the search short); ntrials: independent
    annealings from the greedy tree; betas: the inverse temperatures, each for
    `niters` sweeps; sc_target: log2 of the intermediate size below which space is
    free (default None: the first half of the trials with no free space, pressing
    every intermediate down, the second half with space free below the best size the
    first half found, lowering the operation count at that size);
    sc_weight, rw_weight: the weights of space and of memory traffic against time;
    time_limit: wall seconds for the whole search, compile and greedy seed included
    (None: no limit); the trials end early when it is reached, keeping the best tree so
    far (the greedy tree if the clock runs out before any trial); threads: trials run on this many
    threads at once (default: one per CPU core)."""

    name = "treesa"

    def __init__(self, seed=0, ntrials=10, betas=None, niters=20, sc_target=None,
                 sc_weight=1.0, rw_weight=0.2, time_limit=10.0, threads=None):
        self.seed = int(seed)
        self.ntrials = int(ntrials)
        self.betas = np.asarray(betas if betas is not None else np.arange(0.01, 15.0, 0.05),
                                dtype=np.float64)
        self.niters = int(niters)
        self.sc_target = None if sc_target is None else float(sc_target)
        self.sc_weight = float(sc_weight)
        self.rw_weight = float(rw_weight)
        self.time_limit = None if time_limit is None else float(time_limit)
        self.threads = threads
        if self.ntrials < 1 or self.niters < 0 or not self.betas.size:
            raise ValueError(f"TreeSA: ntrials must be >= 1, niters >= 0 and betas non-empty "
                             f"(got ntrials={ntrials}, niters={niters}, {self.betas.size} betas)")
        self.stats = {}

    def __repr__(self):
        return (f"TreeSA(seed={self.seed}, ntrials={self.ntrials}, {self.betas.size} betas, "
                f"niters={self.niters}, time_limit={self.time_limit})")

    def search(self, sets, output, sizes, abort_size=None):
        """A path (einsum_path convention) for operands with label `sets`."""
        # the time budget is wall time from here: Numba's compile (or cache load) and the
        # greedy seed count against it, so a search returns by about time_limit
        start = time.perf_counter()
        _warm_up()
        self.stats = {"compile_seconds": time.perf_counter() - start}
        sets = [frozenset(s) for s in sets]
        output = frozenset(output)
        n = len(sets)
        if n <= 2:
            return [(0, 1)] if n == 2 else []
        prefix, alive = _absorb_subsets(sets)
        rest_ids = sorted(alive)
        rest = [alive[t] for t in rest_ids]
        # the reduced network: one leaf per remaining tensor (labels as ints 0..L-1)
        labels = sorted(set().union(*rest) | output, key=repr)
        code = {l: k for k, l in enumerate(labels)}
        words = max(1, (len(labels) + 63) // 64)
        leaf_bits = np.zeros((len(rest), words), np.uint64)
        for t, s in enumerate(rest):
            _set_bits(leaf_bits[t], [code[l] for l in s])
        out_bits = np.zeros(words, np.uint64)
        _set_bits(out_bits, [code[l] for l in output])
        masks, logs = _size_groups(labels, sizes, words)
        if len(rest) <= 2:
            tree_ssa = [(0, 1)] if len(rest) == 2 else []
        else:
            seed_path = greedy_path(rest, output, sizes, memory_limit=1 << 62,
                                    abort_size=abort_size)
            left, right = _tree_from_ssa(path_to_ssa(seed_path, len(rest)), len(rest))
            tree_ssa = self._anneal(left, right, leaf_bits, out_bits, masks, logs, start)
        # splice: the absorptions first, then the tree over the remaining tensors
        n_pre = len(prefix)
        ids = {t: rest_ids[t] for t in range(len(rest))}   # reduced id -> global ssa id
        ssa = list(prefix)
        for k, (x, y) in enumerate(tree_ssa):
            ssa.append((ids[x], ids[y]))
            ids[len(rest) + k] = n + n_pre + k
        self.stats["seconds"] = time.perf_counter() - start
        return ssa_to_path(ssa, n)

    def _anneal(self, left0, right0, leaf_bits, out_bits, masks, logs, start):
        from . import _treesa_kernels as K
        n = leaf_bits.shape[0]
        log2rw = math.log2(self.rw_weight) if self.rw_weight > 0 else -math.inf
        bits0 = K.node_labels(left0, right0, leaf_bits, out_bits)
        tc, sc = K.tree_cost(left0, right0, bits0, masks, logs)
        seed_result = ((round(sc, 9), tc), left0, right0, True)   # never worse than greedy
        deadline = None if self.time_limit is None else start + self.time_limit

        def trial(k, target):
            if deadline is not None and time.perf_counter() > deadline:
                return None
            left, right = left0.copy(), right0.copy()
            bits = bits0.copy()
            sz, tcs, rws = K.node_costs(left, right, bits, masks, logs)
            state = K.rng_state(self.seed * 1_000_003 + k)
            stack = np.empty(2 * n, np.int64)
            scratch = np.empty(leaf_bits.shape[1], np.uint64)
            finished = True
            for beta in self.betas:
                K.sweeps(left, right, bits, sz, tcs, rws, masks, logs, float(beta), self.niters,
                         target, self.sc_weight, log2rw, stack, scratch, state)
                if deadline is not None and time.perf_counter() > deadline:
                    finished = False
                    break
            tc, sc = K.tree_cost(left, right, bits, masks, logs)
            return (round(sc, 9), tc), left, right, finished

        workers = max(1, min(self.ntrials, self.threads or os.cpu_count() or 1))

        def run(trials, target):
            if workers == 1 or len(trials) == 1:
                return [trial(k, target) for k in trials]
            from concurrent.futures import ThreadPoolExecutor   # the sweeps release the GIL
            with ThreadPoolExecutor(workers) as pool:
                return list(pool.map(lambda k: trial(k, target), trials))

        if self.sc_target is not None:
            results = run(range(self.ntrials), self.sc_target)
        else:
            # first press every intermediate down (space is never free), then, from the
            # best size found, let space below it be free and lower the operation count
            first = max(1, self.ntrials // 2)
            results = run(range(first), 0.0)
            done = [r for r in results if r is not None]
            target = min([seed_result] + done, key=lambda r: r[0])[0][0]
            results += run(range(first, self.ntrials), target)
        done = [r for r in results if r is not None]
        best = min([seed_result] + done, key=lambda r: r[0])   # first of equals: trial order
        self.stats.update(trials=len(done), finished=sum(r[3] for r in done),
                          log2_size=best[0][0], log2_cost=best[0][1])
        return _ssa_from_tree(best[1], best[2], n)


# =========================================================================== helpers

_WARM = []


def _warm_up():
    """Run every compiled kernel once on a three-leaf tree."""
    if _WARM:
        return
    from . import _treesa_kernels as K
    left = np.array([-1, -1, -1, 0, 3], np.int64)
    right = np.array([-1, -1, -1, 1, 2], np.int64)
    leaves = np.array([[3], [6], [5]], np.uint64)
    masks, logs = np.array([[7]], np.uint64), np.array([1.0])
    bits = K.node_labels(left, right, leaves, np.zeros(1, np.uint64))
    sz, tcs, rws = K.node_costs(left, right, bits, masks, logs)
    K.sweeps(left, right, bits, sz, tcs, rws, masks, logs, 1.0, 1, 0.0, 1.0, -1.0,
             np.empty(10, np.int64), np.empty(1, np.uint64), K.rng_state(0))
    K.tree_cost(left, right, bits, masks, logs)
    _WARM.append(True)


def compiled_kernels_ready():
    """True when the annealing kernels are compiled in this process."""
    return bool(_WARM)


def _absorb_subsets(sets):
    """Contract every tensor whose labels are a subset of another's into it (the
    smallest such superset, lowest id first). Returns (ssa pairs, ids of the tensors
    left: {id: labels}), ids growing as in ssa_to_path."""
    n = len(sets)
    alive = {t: s for t, s in enumerate(sets)}
    holders = {}
    for t, s in alive.items():
        for l in s:
            holders.setdefault(l, set()).add(t)
    ssa = []
    next_id = n
    for t in range(n):
        s = sets[t]
        if t not in alive or not s:
            continue
        candidates = set.intersection(*(holders[l] for l in s)) - {t}
        if not candidates:
            continue
        target = min(candidates, key=lambda u: (len(alive[u]), u))
        merged = alive[target] | s
        for u in (t, target):
            for l in alive.pop(u):
                holders[l].discard(u)
        for l in merged:
            holders[l].add(next_id)
        alive[next_id] = merged
        ssa.append((min(t, target), max(t, target)))
        next_id += 1
    return ssa, alive


def _set_bits(row, positions):
    for p in positions:
        row[p // 64] |= np.uint64(1) << np.uint64(p % 64)


def _size_groups(labels, sizes, words):
    """Bit masks of the labels of each distinct size, and log2 of that size: the log2
    size of a label set is sum_g popcount(bits & mask_g) * log2(size_g)."""
    groups = {}
    for k, l in enumerate(labels):
        groups.setdefault(sizes[l], []).append(k)
    masks = np.zeros((len(groups), words), np.uint64)
    logs = np.zeros(len(groups), np.float64)
    for g, (size, members) in enumerate(sorted(groups.items())):
        _set_bits(masks[g], members)
        logs[g] = math.log2(size) if size > 0 else -1e9
    return masks, logs


def _tree_from_ssa(ssa, n):
    """(left, right) child arrays of the binary tree of an ssa path; leaves -1, root last."""
    total = n + len(ssa)
    left = np.full(total, -1, np.int64)
    right = np.full(total, -1, np.int64)
    for k, (x, y) in enumerate(ssa):
        left[n + k], right[n + k] = x, y
    return left, right


def _ssa_from_tree(left, right, n):
    """The ssa pairs of a tree, children before parents (post-order from the root)."""
    root = len(left) - 1
    order, stack = [], [(root, False)]
    while stack:
        node, done = stack.pop()
        if left[node] < 0:
            continue
        if done:
            order.append(node)
        else:
            stack.append((node, True))
            stack.append((int(right[node]), False))
            stack.append((int(left[node]), False))
    ids = {t: t for t in range(n)}
    ssa = []
    for k, node in enumerate(order):
        ssa.append((ids[int(left[node])], ids[int(right[node])]))
        ids[node] = n + k
    return ssa
