"""opgraph.einsum: NumPy's grammar, results equal to numpy.einsum, swap-rule gradients."""
import itertools

import numpy as np
import pytest

import opgraph as og
from opgraph.ops import einsum as E

# (subscripts, shapes): every grammar feature of issue 4
CASES = [
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("ij,jk", [(2, 3), (3, 4)]),                       # implicit output
    ("Ba,aC", [(2, 3), (3, 2)]),                         # implicit: uppercase sorts first
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 2)]),
    ("ij->ji", [(2, 3)]),
    ("ii->i", [(3, 3)]),
    ("ii", [(3, 3)]),                                    # trace
    ("ii->", [(3, 3)]),
    ("iij->j", [(2, 2, 3)]),
    ("iii->i", [(2, 2, 2)]),
    ("iji,jk->k", [(2, 3, 2), (3, 2)]),
    ("ij->", [(2, 3)]),
    ("ij,k->k", [(2, 3), (4,)]),                         # lone indices summed away
    ("ij,ij->ij", [(2, 3), (2, 3)]),                     # Hadamard
    ("i,j->ij", [(2,), (3,)]),                           # outer
    (",ij->ij", [(), (2, 3)]),                           # scalar operand
    (",->", [(), ()]),
    ("i,i->", [(4,), (4,)]),
    ("...ij,...jk", [(3, 1, 2, 3), (2, 3, 2)]),          # ellipsis broadcasting 1 vs n
    ("...ij,...jk->...ik", [(2, 2, 3), (3, 2)]),
    ("i...->...", [(2, 3, 2)]),
    ("...i->i", [(2, 3)]),                               # ellipsis dims summed (as optimize=True)
    ("...,...->...", [(2, 1), (3,)]),
    ("ij,jk->ik", [(2, 1), (3, 2)]),                     # size-1 index broadcast
    ("ij,jk->ijk", [(2, 3), (1, 2)]),
    ("ij,jk->ik", [(2, 0), (0, 3)]),                     # zero-size contracted index
    ("ij,jk->ik", [(0, 3), (3, 2)]),                     # zero-size free index
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
    ("i,ij,j->", [(3,), (3, 4), (4,)]),
    ("bhqd,bhkd->bhqk", [(2, 2, 3, 2), (2, 2, 4, 2)]),
    ("ab,bc,cd,de,ef->af", [(2, 3), (3, 2), (2, 3), (3, 2), (2, 2)]),
    ("abc,cd,dbe,ea->", [(2, 3, 2), (2, 3), (3, 3, 2), (2, 2)]),
    ("ij,jk,ki->", [(2, 3), (3, 2), (2, 2)]),
]


def _tensors(backend, shapes, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return [og.tensor(rng.standard_normal(s), dtype=dtype, requires_grad=True, backend=backend)
            for s in shapes]


@pytest.mark.parametrize("subscripts,shapes", CASES, ids=[c[0] for c in CASES])
def test_forward_matches_numpy(backend, subscripts, shapes):
    xs = _tensors(backend, shapes)
    out = og.einsum(subscripts, *xs)
    ref = np.einsum(subscripts, *[x.numpy() for x in xs], optimize=True)
    assert out.shape == ref.shape
    assert out.dtype == np.float64
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("subscripts,shapes", CASES, ids=[c[0] for c in CASES])
def test_gradcheck(backend, subscripts, shapes):
    """Finite differences on NumPy; the other backends must give NumPy's gradients
    (finite differences in the CUDA simulator would be slow)."""
    xs = _tensors(backend, shapes, seed=1)
    if backend.name == "numpy":
        og.gradcheck(lambda *t: og.einsum(subscripts, *t), xs)
        return
    ref = _tensors("numpy", shapes, seed=1)
    out, ref_out = og.einsum(subscripts, *xs), og.einsum(subscripts, *ref)
    v = np.random.default_rng(2).standard_normal(out.shape)
    got = og.grad(out, xs, og.tensor(v, backend=backend))
    want = og.grad(ref_out, ref, og.tensor(v))
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("subscripts,shapes", [
    ("ij,jk,kl->il", [(2, 3), (3, 2), (2, 2)]),
    ("iij,j->i", [(2, 2, 3), (3,)]),
    ("...ij,jk->...k", [(2, 1, 2), (2, 3)]),
    ("ij,jk->ik", [(2, 1), (3, 2)]),
])
def test_gradgradcheck(subscripts, shapes):
    xs = _tensors("numpy", shapes, seed=2)
    og.gradgradcheck(lambda *t: og.einsum(subscripts, *t), xs)


def test_swap_rule_gradient_values():
    # d/dA sum(A @ B) = ones @ B.T; repeated index -> gradient on the diagonal only
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((3, 4))
    ta, tb = og.tensor(a, requires_grad=True), og.tensor(b, requires_grad=True)
    og.einsum("ij,jk->", ta, tb).backward()
    np.testing.assert_allclose(ta.grad.numpy(), np.ones((2, 4)) @ b.T, rtol=1e-6)
    np.testing.assert_allclose(tb.grad.numpy(), a.T @ np.ones((2, 4)), rtol=1e-6)
    m = og.tensor(rng.standard_normal((3, 3)), requires_grad=True)
    og.einsum("ii->", m).backward()
    np.testing.assert_array_equal(m.grad.numpy(), np.eye(3))
    # a size-1 dim broadcast against 4 gets its gradient summed back to size 1
    x = og.tensor(np.ones((2, 1)), requires_grad=True)
    y = og.tensor(np.arange(8.0).reshape(4, 2), requires_grad=True)
    og.einsum("ij,ji->", x, y).backward()
    assert x.grad.shape == (2, 1)
    np.testing.assert_allclose(x.grad.numpy(), y.numpy().sum(axis=0).reshape(2, 1))


@pytest.mark.parametrize("n", [2, 3, 5, 30])
def test_many_operands(backend, n):
    """A chain of n matrices closed into a trace, plus a vector on each end."""
    rng = np.random.default_rng(n)
    letters = E._LETTERS
    mats = [rng.standard_normal((2, 2)) * 0.7 for _ in range(n)]
    terms = [letters[i] + letters[(i + 1) % n] for i in range(n)]
    subscripts = ",".join(terms) + "->" + letters[0]
    xs = [og.tensor(m, requires_grad=True, backend=backend) for m in mats]
    out = og.einsum(subscripts, *xs)
    np.testing.assert_allclose(out.numpy(), np.einsum(subscripts, *mats, optimize=True),
                               rtol=1e-9)
    if backend.name == "numpy":
        og.gradcheck(lambda *t: og.einsum(subscripts, *t), xs)


def test_sublist_form_matches_numpy():
    rng = np.random.default_rng(4)
    a, b, c = rng.standard_normal((2, 3)), rng.standard_normal((3, 4)), rng.standard_normal((4,))
    ta, tb, tc = (og.tensor(x) for x in (a, b, c))
    np.testing.assert_allclose(og.einsum(ta, [0, 1], tb, [1, 2], [0, 2]).numpy(), a @ b)
    np.testing.assert_allclose(og.einsum(ta, [0, 1], tb, [1, 2], tc, [2]).numpy(),
                               np.einsum(a, [0, 1], b, [1, 2], c, [2]))   # implicit output
    d = rng.standard_normal((5, 2, 3))
    np.testing.assert_allclose(og.einsum(og.tensor(d), [Ellipsis, 0, 1], tb, [1, 2],
                                         [Ellipsis, 2]).numpy(),
                               np.einsum(d, [Ellipsis, 0, 1], b, [1, 2], [Ellipsis, 2]))
    # labels need not be small or contiguous
    np.testing.assert_allclose(og.einsum(ta, [1000, 7], tb, [7, 99], [99, 1000]).numpy(),
                               (a @ b).T)


def test_more_than_52_labels(backend):
    """A 60-matrix chain (61 labels) and a 60-matrix ring: beyond NumPy's letters."""
    rng = np.random.default_rng(5)
    n = 60
    mats = [rng.standard_normal((2, 2)) * 0.8 for _ in range(n)]
    xs = [og.tensor(m, requires_grad=True, backend=backend) for m in mats]
    args = []
    for i, x in enumerate(xs):
        args += [x, [i, i + 1]]
    out = og.einsum(*args, [0, n])
    np.testing.assert_allclose(out.numpy(), np.linalg.multi_dot(mats), rtol=1e-9)
    ring = []
    for i, x in enumerate(xs):
        ring += [x, [i, (i + 1) % n]]
    trace = og.einsum(*ring, [])
    np.testing.assert_allclose(trace.item(), np.trace(np.linalg.multi_dot(mats)), rtol=1e-9)
    if backend.name == "numpy":
        og.gradcheck(lambda *t: og.einsum(*[v for pair in zip(t, [r for r in ring[1::2]])
                                            for v in pair], []), xs[:1] + [x.detach() for x in xs[1:]])
        path, info = og.einsum_path(*ring, [])
        assert len(path) == n and info.largest_intermediate <= 4


# ---------------------------------------------------------------------------- paths

def _random_network(rng, n_ops, n_labels):
    sizes = {label: int(rng.integers(1, 5)) for label in range(n_labels)}
    sets = []
    for _ in range(n_ops):
        k = int(rng.integers(1, 4))
        sets.append(set(int(x) for x in rng.choice(n_labels, size=k, replace=False)))
    counts = {}
    for s in sets:
        for x in s:
            counts[x] = counts.get(x, 0) + 1
    output = {x for x, c in counts.items() if c == 1 and rng.random() < 0.5}
    return sets, output, sizes


def _cost(sets, output, sizes, path):
    sets = [set(s) for s in sets]
    total = 0
    for i, j in path:
        a, b = sets[i], sets[j]
        rest = set(output).union(*[s for k, s in enumerate(sets) if k not in (i, j)])
        keep = (a | b) & rest
        total += E._flops(a | b, bool((a | b) - keep), 2, sizes)
        sets = [s for k, s in enumerate(sets) if k not in (i, j)] + [keep]
    return total


def test_own_greedy_path_is_numpys_greedy():
    rng = np.random.default_rng(6)
    for trial in range(40):
        sets, output, sizes = _random_network(rng, int(rng.integers(3, 9)), 10)
        ours = E.greedy_path(sets, output, sizes)
        theirs = E._numpy_path(sets, output, sizes, "greedy")
        assert len(ours) == len(sets) - 1
        if all(len(step) == 2 for step in theirs):
            assert _cost(sets, output, sizes, ours) <= _cost(sets, output, sizes, theirs), trial


def test_optimal_path_is_no_worse_than_greedy():
    rng = np.random.default_rng(7)
    for _ in range(15):
        sets, output, sizes = _random_network(rng, int(rng.integers(3, 7)), 8)
        best = _cost(sets, output, sizes, E.optimal_path(sets, output, sizes))
        assert best <= _cost(sets, output, sizes, E.greedy_path(sets, output, sizes))
        theirs = E._numpy_path(sets, output, sizes, "optimal")
        assert best <= _cost(sets, output, sizes, theirs)


def test_einsum_path_and_explicit_paths():
    rng = np.random.default_rng(8)
    arrays = [rng.standard_normal(s) for s in [(8, 2), (2, 8), (8, 2)]]
    path, info = og.einsum_path("ij,jk,kl->il", *arrays)
    assert path[0] == "einsum_path" and len(path) == 3
    np_path = np.einsum_path("ij,jk,kl->il", *arrays, optimize="greedy")[0]
    assert path == np_path
    assert info.largest_intermediate == 16 and "Largest intermediate" in str(info)
    ref = np.einsum("ij,jk,kl->il", *arrays)
    ts = [og.tensor(a) for a in arrays]
    for optimize in ("greedy", "optimal", False, True, path, [(0, 1), (0, 1)],
                     ["einsum_path", (0, 2), (0, 1)], [(0, 1, 2)]):
        out = og.einsum("ij,jk,kl->il", *ts, optimize=optimize)
        np.testing.assert_allclose(out.numpy(), ref, rtol=1e-10)
    # the op records the path it used
    op = E.Einsum("ij,jk,kl->il", optimize=[(0, 1), (0, 1)])
    op(*ts)
    assert op.path == [(0, 1), (0, 1)] and op.largest_intermediate == 64
    # a path from opgraph works in numpy too
    np.testing.assert_allclose(np.einsum("ij,jk,kl->il", *arrays, optimize=path), ref)


def test_optimize_false_goes_left_to_right_and_memory_limits_are_accepted():
    rng = np.random.default_rng(9)
    arrays = [rng.standard_normal(s) for s in [(3, 4), (4, 5), (5, 2), (2, 3)]]
    ts = [og.tensor(a) for a in arrays]
    op = E.Einsum("ab,bc,cd,de->ae", optimize=False)
    out = op(*ts)
    # ((ab·bc)·cd)·de: each step pairs the running result with the next operand
    assert op.path == [(0, 1), (0, 2), (0, 1)]
    assert [line for _, line in op.info.steps] == ["ab,bc->ac", "cd,ac->da", "de,da->ea"]
    ref = np.einsum("ab,bc,cd,de->ae", *arrays)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-10)
    for optimize in (("greedy", 100), ("optimal", 100), ["greedy", 10 ** 6]):
        np.testing.assert_allclose(og.einsum("ab,bc,cd,de->ae", *ts, optimize=optimize).numpy(),
                                   ref, rtol=1e-10)
    with pytest.raises(ValueError, match="memory limit must be a number"):
        og.einsum("ab,bc,cd,de->ae", *ts, optimize=("greedy", "big"))


def test_optimal_path_search_is_fast_for_a_dozen_operands():
    """numpy's brute force takes ~40 s for an 8-matrix chain; the subset DP takes ms."""
    import time
    n = 12
    subscripts = ",".join(chr(97 + i) + chr(98 + i) for i in range(n)) + "->"
    shapes = [(2, 3) if i % 2 else (3, 2) for i in range(n)]
    start = time.perf_counter()
    path, info = og.einsum_path(subscripts, *[np.zeros(s) for s in shapes], optimize="optimal")
    assert time.perf_counter() - start < 20  # generous: a hang is what this guards against
    assert len(path) == n


def test_sublists_may_be_any_sequence_of_labels():
    a, b = np.arange(6.0).reshape(2, 3), np.arange(3.0)
    got = og.einsum(og.tensor(a), np.array([0, 1]), og.tensor(b), range(1, 2), (0,))
    np.testing.assert_allclose(got.numpy(), a @ b)
    with pytest.raises(ValueError, match=r"output sublist .* each operand needs its own"):
        og.einsum(og.tensor(a), [0, 1], og.tensor(b))


def test_backward_reuses_the_pairwise_intermediates(monkeypatch):
    """n operands: backward runs 2 pairwise steps per forward step (swap rule on the tree),
    not a fresh (n-1)-step contraction per operand."""
    calls = []
    real = E.lower.run_pair
    monkeypatch.setattr(E.lower, "run_pair", lambda *a: calls.append(1) or real(*a))
    n = 8
    xs = _tensors("numpy", [(3, 3)] * n)
    subscripts = ",".join(E._LETTERS[i] + E._LETTERS[i + 1] for i in range(n)) + "->"
    out = og.einsum(subscripts, *xs)
    assert len(calls) == n - 1
    calls.clear()
    out.backward()
    assert len(calls) == 2 * (n - 1)
    ref = np.linalg.multi_dot([x.numpy() for x in xs])
    g0 = np.linalg.multi_dot([x.numpy() for x in xs[1:]]).sum(axis=1)
    np.testing.assert_allclose(xs[0].grad.numpy(), np.broadcast_to(g0, (3, 3)), rtol=1e-10)
    assert np.isclose(out.item(), ref.sum())


def test_recorded_as_one_op_and_dtype_kept():
    a = og.randn(2, 3, requires_grad=True, seed=0)
    b = og.randn(3, 4, seed=1)
    with og.Tape() as tape:
        out = og.einsum("ij,jk->ik", a, b)
    assert [op.name for op in tape.ops] == ["Einsum"]
    assert out.dtype == np.float32
    out.sum().backward()
    assert a.grad.dtype == np.float32 and b.grad is None


def test_mixed_dtypes_keep_each_gradient_dtype():
    a = og.randn(2, 3, requires_grad=True, seed=0)                       # float32
    b = og.randn(3, 2, requires_grad=True, seed=1, dtype=np.float64)
    out = og.einsum("ij,jk->ik", a, b)
    assert out.dtype == np.float64
    out.sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64


def test_plan_is_cached():
    E._PLANS.clear()
    a, b = og.randn(2, 3, seed=0), og.randn(3, 4, seed=1)
    og.einsum("ij,jk->ik", a, b)
    og.einsum("ij,jk->ik", a, b)
    assert len(E._PLANS) == 1


# ---------------------------------------------------------------------------- errors

ERRORS = [
    (("ij,jk->il", [(2, 3), (3, 4)]), "output index 'l' appears in no input"),
    (("ij,jk->ii", [(2, 3), (3, 4)]), "repeated"),
    (("ijk,jk->ik", [(2, 3), (3, 4)]), "operand 0 has 2 dims"),
    (("ij,jk->ik", [(2, 3), (4, 5)]), "disagree on the size of index 'j'"),
    (("ij,j1->i", [(2, 3), (3, 4)]), "invalid character '1'"),
    (("ij,jk->ik", [(2, 3)]), "2 subscript terms but 1 operand"),
    (("ij->ik->i", [(2, 3)]), "'->'"),
    (("i..j->i", [(2, 3)]), "'...'"),
    (("...i,...i->...", [(2, 3), (4, 3)]), "the '...' dims"),
    (("ii->i", [(2, 3)]), "repeats index 'i' over dims of different sizes"),
    (("ij->", [(2, 3, 4)]), "names 2"),
]


@pytest.mark.parametrize("case,message", ERRORS, ids=[m for _, m in ERRORS])
def test_errors_name_the_subscripts(case, message):
    subscripts, shapes = case
    xs = [og.zeros(*s) for s in shapes]
    with pytest.raises(ValueError) as info:
        og.einsum(subscripts, *xs)
    assert message in str(info.value)
    assert repr(subscripts) in str(info.value)


def test_more_errors():
    a = og.zeros(2, 3)
    with pytest.raises(ValueError, match="no operands"):
        og.einsum("ij")
    with pytest.raises(ValueError, match="labels must be non-negative integers"):
        og.einsum(a, [0, "x"])
    with pytest.raises(ValueError, match="followed by a list"):
        og.einsum(a, 3, a, [0, 1])
    with pytest.raises(ValueError, match="unknown optimize"):
        og.einsum("ij,jk->ik", a, og.zeros(3, 2), optimize="fastest")
    with pytest.raises(ValueError, match="leaves 2 operands uncontracted"):
        og.einsum("ij,jk,kl->il", a, og.zeros(3, 2), og.zeros(2, 2), optimize=[(0, 1)])
    with pytest.raises(ValueError, match="not a set of distinct positions"):
        og.einsum("ij,jk->ik", a, og.zeros(3, 2), optimize=[(0, 5)])
    with pytest.raises(ValueError, match="too many"):
        E.optimal_path([{i, i + 1} for i in range(20)], set(), {i: 2 for i in range(21)})


def test_randomized_against_numpy():
    """Random valid expressions (repeats, lone indices, outer products) on 1-4 operands."""
    rng = np.random.default_rng(9)
    letters = "abcdef"
    sizes = {c: int(rng.integers(1, 4)) for c in letters}
    for trial in range(60):
        n = int(rng.integers(1, 5))
        terms = ["".join(rng.choice(list(letters), size=int(rng.integers(0, 4)))) for _ in range(n)]
        used = sorted(set("".join(terms)))
        out = "".join(c for c in used if rng.random() < 0.4)
        subscripts = ",".join(terms) + "->" + out
        arrays = [rng.standard_normal([sizes[c] for c in t]) for t in terms]
        ref = np.einsum(subscripts, *arrays)
        got = og.einsum(subscripts, *[og.tensor(a) for a in arrays]).numpy()
        np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12, err_msg=subscripts)
        if trial % 6 == 0:
            og.gradcheck(lambda *t: og.einsum(subscripts, *t),
                         [og.tensor(a, requires_grad=True) for a in arrays])


def test_all_pairs_of_terms_with_broadcast():
    rng = np.random.default_rng(10)
    for s1, s2 in itertools.product([(1, 3), (2, 3), (2, 1)], repeat=2):
        a, b = rng.standard_normal(s1), rng.standard_normal(s2)
        ref = np.einsum("ij,ij->ij", a, b)
        got = og.einsum("ij,ij->ij", og.tensor(a), og.tensor(b)).numpy()
        np.testing.assert_allclose(got, ref)
