"""Out-of-range indices never read or write outside an array, on every backend.

Every index-taking kernel and op is tried with an index far out of range (10**6,
which used to crash the interpreter on the Numba backend), with a negative index
where torch rejects one, and with the negative indices torch accepts. The cases
run in a child process, so that a kernel that corrupts memory shows up as failed
cases naming the one that crashed instead of a dead test run.
"""
import json
import os
import subprocess
import sys

import pytest

from conftest import BACKENDS, _missing_package

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (case id, code run with `b` the backend, `x` a float64 tensor of shape (3, 3) on it and
#  `F(shape)` / `I(list)` float / int64 arrays on it, expected error type, message regex).
# A message starting with "{b}." names the kernel on backend b ("numba.scatter_add").
# Expected None: the call must succeed and `ok` (the code's value) must be True.
HUGE = 10 ** 6
CASES = [
    # kernels, called directly
    ("gather", "b.gather(F((3, 3)), 1, I([[0, HUGE, 1]]))", IndexError,
     r"{b}\.gather: index out of range: values span \[0, 1000000\] but the valid range is "
     r"\[0, 2\] \(dim 1 has size 3\)"),
    ("gather-negative", "b.gather(F((3, 3)), 0, I([[0, -1]]))", IndexError,
     r"{b}\.gather: index out of range: values span \[-1, 0\] .*\[0, 2\] \(dim 0 has size 3\)"),
    ("gather-float-index", "b.gather(F((3, 3)), 1, F((3, 1)))", TypeError,
     r"{b}\.gather: index must be an integer array, got dtype float64"),
    ("gather-index-too-wide", "b.gather(F((3, 3)), 1, I([[0]] * 4))", ValueError,
     r"{b}\.gather: index of shape \(4, 1\) does not fit shape \(3, 3\)"),
    ("scatter_add", "b.scatter_add((3, 3), 1, I([[0, HUGE, 1]] * 3), F((3, 3)))", IndexError,
     r"{b}\.scatter_add: index out of range: values span \[0, 1000000\] .*\(dim 1 has size 3\)"),
    ("scatter_add-negative", "b.scatter_add((3, 3), 0, I([[0, 1, -2]]), F((1, 3)))", IndexError,
     r"{b}\.scatter_add: index out of range: values span \[-2, 1\] .*\(dim 0 has size 3\)"),
    ("scatter_add-src-too-small", "b.scatter_add((3, 3), 1, I([[0, 1, 2]] * 3), F((3, 2)))",
     ValueError, r"{b}\.scatter_add: index of shape \(3, 3\) does not fit shape \(3, 3\) and src"),
    ("take_rows", "b.take_rows(F((3, 2)), I([0, HUGE]))", IndexError,
     r"{b}\.take_rows: indices out of range: values span \[0, 1000000\] but the valid range is "
     r"\[0, 2\] \(dim 0 has size 3\)"),
    ("take_rows-negative", "b.take_rows(F((3, 2)), I([[0], [-1]]))", IndexError,
     r"{b}\.take_rows: indices out of range: values span \[-1, 0\]"),
    ("scatter_rows_add", "b.scatter_rows_add(3, I([2, HUGE]), F((2, 4)))", IndexError,
     r"{b}\.scatter_rows_add: indices out of range: values span \[2, 1000000\] .*\[0, 2\]"),
    ("scatter_rows_add-negative", "b.scatter_rows_add(3, I([-1, 0]), F((2, 4)))", IndexError,
     r"{b}\.scatter_rows_add: indices out of range: values span \[-1, 0\]"),
    ("scatter_rows_add-src-too-small", "b.scatter_rows_add(3, I([0, 1, 2]), F((2, 4)))",
     ValueError, r"{b}\.scatter_rows_add: src of shape \(2, 4\) does not start with the "
     r"indices' shape \(3,\)"),
    ("getitem", "b.getitem(F((3, 4)), (slice(None), np.array([0, HUGE])))", IndexError,
     r"{b}\.getitem: index out of range: values span \[0, 1000000\] but the valid range is "
     r"\[-4, 3\] \(dim 1 has size 4\)"),
    ("getitem-too-negative", "b.getitem(F((3, 4)), (np.array([-4]), Ellipsis))", IndexError,
     r"{b}\.getitem: index out of range: values span \[-4, -4\] .*\[-3, 2\] \(dim 0 has size 3\)"),
    ("index_put_add", "b.index_put_add((3, 4), (np.array([1, HUGE]),), F((2, 4)))", IndexError,
     r"{b}\.index_put_add: index out of range: values span \[1, 1000000\] .*\(dim 0 has size 3\)"),
    ("index_put_add-too-negative", "b.index_put_add((3, 4), (slice(None), np.array([-5])), "
     "F((3, 1)))", IndexError, r"{b}\.index_put_add: index out of range: .*\(dim 1 has size 4\)"),
    ("cross_entropy", "b.cross_entropy(F((2, 3)), I([0, HUGE]))", IndexError,
     r"{b}\.cross_entropy: targets out of range: values span \[0, 1000000\] .*\[0, 2\] "
     r"\(dim 1 has size 3\)"),
    ("cross_entropy-negative", "b.cross_entropy(F((2, 3)), I([-1, 0]))", IndexError,
     r"{b}\.cross_entropy: targets out of range: values span \[-1, 0\]"),
    ("cross_entropy_grad", "b.cross_entropy_grad(F((2, 3)), I([HUGE, 0]), F((2,)), F((2,)), 1.0)",
     IndexError, r"{b}\.cross_entropy_grad: targets out of range: values span \[0, 1000000\]"),
    ("cross_entropy-short-targets", "b.cross_entropy(F((2, 3)), I([0]))", ValueError,
     r"{b}\.cross_entropy: expected logits \(N, C\) and targets \(N,\), got shapes \(2, 3\) and "
     r"\(1,\)"),
    # ops: the error names the op
    ("Gather", "og.gather(x, 1, np.array([[0, HUGE]] * 3))", IndexError,
     r"^Gather: index out of range: values span \[0, 1000000\] .*\(dim 1 has size 3\)"),
    ("Gather-negative", "og.gather(x, 1, np.array([[0, -1]] * 3))", IndexError,
     r"^Gather: index out of range: values span \[-1, 0\]"),
    ("ScatterAdd", "ops.ScatterAdd((3, 3), 1)(x, og.tensor(np.array([[0, HUGE, 1]] * 3), "
     "backend=b))", IndexError, r"^ScatterAdd: index out of range: values span \[0, 1000000\]"),
    ("Embedding", "og.embedding(x, np.array([[2, HUGE]]))", IndexError,
     r"^Embedding: indices out of range: values span \[2, 1000000\] .*\(dim 0 has size 3\)"),
    ("Embedding-negative", "og.embedding(x, np.array([-1]))", IndexError,
     r"^Embedding: indices out of range: values span \[-1, -1\]"),
    ("EmbeddingBackward", "ops.EmbeddingBackward(3)(x, og.tensor(np.array([0, 1, HUGE]), "
     "backend=b))", IndexError, r"^EmbeddingBackward: indices out of range"),
    ("Index", "x[np.array([0, HUGE])]", IndexError,
     r"^Index: index out of range: values span \[0, 1000000\] but the valid range is \[-3, 2\]"),
    ("Index-tensor-key", "x[:, og.tensor(np.array([-4, 0]), backend=b)]", IndexError,
     r"^Index: index out of range: values span \[-4, 0\] .*\(dim 1 has size 3\)"),
    ("IndexPutAdd", "ops.IndexPutAdd((3, 3), (np.array([HUGE]),))(x[:1])", IndexError,
     r"^IndexPutAdd: index out of range: values span \[1000000, 1000000\]"),
    ("CrossEntropy", "og.cross_entropy(x, np.array([0, 1, HUGE]))", IndexError,
     r"^CrossEntropy: targets out of range: values span \[0, 1000000\] .*\[0, 2\]"),
    ("CrossEntropy-negative", "og.cross_entropy(x, np.array([0, -1, 2]))", IndexError,
     r"^CrossEntropy: targets out of range: values span \[-1, 2\]"),
    # what torch accepts still works
    ("Index-negative-ok", "ok = np.array_equal(x[np.array([-3, -1])].numpy(), xs[[-3, -1]])",
     None, None),
    ("IndexPutAdd-negative-ok", "ok = np.array_equal(b.to_numpy(b.index_put_add((3, 3), "
     "(np.array([-1, 2]),), F((2, 3)))), np.add.at(z := np.zeros((3, 3)), [[-1, 2]], "
     "np.arange(6.0).reshape(2, 3)) or z)", None, None),
    ("Gather-backward-in-range-ok", "y = og.gather(xg, 1, np.array([[0, 2]] * 3)); "
     "y.sum().backward(); ok = np.array_equal(xg.grad.numpy(), [[1, 0, 1]] * 3)", None, None),
    ("empty-index-ok", "ok = b.to_numpy(b.scatter_rows_add(0, I(np.zeros(0, np.int64)), "
     "F((0, 2)))).shape == (0, 2) and b.to_numpy(b.gather(F((3, 3)), 1, "
     "I(np.zeros((3, 0), np.int64)))).shape == (3, 0)", None, None),
    # index arrays that broadcast to nothing read nothing: any values pass (NumPy, torch)
    ("empty-broadcast-index-ok", "e = np.zeros(0, np.int64); y = xg[np.array([[HUGE], [0]]), e]; "
     "y.sum().backward(); z = og.zeros(3, 3, backend=b); z[np.array([[HUGE]]), e] = 1.0; "
     "ok = y.shape == (2, 0) and not xg.grad.numpy().any() and not z.numpy().any() and "
     "og.zeros(0, 2, backend=b)[np.array([[0], [0]]), e].shape == (2, 0)", None, None),
]

CHILD = r"""
import json, sys
import numpy as np
import opgraph as og
from opgraph import backends, ops
cases = json.loads(sys.stdin.read())
HUGE = 10 ** 6
for name in sys.argv[1:]:
    b = backends.get(name)
    def F(shape):
        return b.asarray(np.arange(float(np.prod(shape))).reshape(shape))
    def I(values):
        return b.asarray(np.asarray(values, dtype=np.int64))
    xs = np.arange(9.0).reshape(3, 3)
    for case_id, code in cases:
        print(json.dumps(["start", name, case_id]), flush=True)
        x = og.tensor(xs, requires_grad=True, backend=b)
        xg = og.tensor(xs, requires_grad=True, backend=b)
        env = dict(globals(), b=b, x=x, xg=xg, xs=xs)
        try:
            exec(code, env)
            result = ["ok", bool(env.get("ok", True)), ""]
        except Exception as e:
            result = ["raised", type(e).__name__, str(e), [c.__name__ for c in type(e).__mro__]]
        print(json.dumps(["done", name, case_id, result]), flush=True)
"""


def _backends():
    return [name for name in BACKENDS if _missing_package(name) is None]


@pytest.fixture(scope="module")
def outcomes():
    """{(backend, case id): result} from one child process, plus how the child ended."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", CHILD, *_backends()], cwd=ROOT, env=env,
                          input=json.dumps([(c[0], c[1]) for c in CASES]), capture_output=True,
                          text=True, timeout=600)
    results, last = {}, None
    for line in proc.stdout.splitlines():
        record = json.loads(line)
        if record[0] == "start":
            last = tuple(record[1:])
        else:
            results[tuple(record[1:3])] = record[3]
    ended = f"exit status {proc.returncode}; last case started: {last}; stderr: {proc.stderr[-2000:]}"
    return results, ended


@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.parametrize("case_id, code, error, pattern", CASES, ids=[c[0] for c in CASES])
def test_index_out_of_range(outcomes, backend_name, case_id, code, error, pattern):
    import re
    if backend_name not in _backends():
        pytest.skip(f"backend {backend_name} not tested: {_missing_package(backend_name)}")
    results, ended = outcomes
    result = results.get((backend_name, case_id))
    assert result is not None, f"the child process died before finishing this case ({ended})"
    if error is None:
        assert result[:2] == ["ok", True], result
        return
    assert result[0] == "raised", f"{code} raised nothing"
    _, type_name, message, mro = result
    assert error.__name__ in mro, f"{type_name}: {message}"
    if error is IndexError:
        assert "IndexOutOfRange" in mro, type_name
    assert re.search(pattern.replace("{b}", backend_name), message), message
