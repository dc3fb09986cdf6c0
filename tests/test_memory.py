"""A long loop of small steps keeps the tape and the live object counts flat, also when
some forwards are never backpropagated and run without no_grad."""
import gc

import numpy as np

import opgraph as og
from opgraph.operation import Operation


def _live(kind):
    return sum(1 for o in gc.get_objects() if isinstance(o, kind))


def test_training_loop_keeps_tape_and_objects_flat():
    rng = np.random.default_rng(0)
    w1 = og.tensor(rng.standard_normal((4, 8)) * 0.3, requires_grad=True)
    w2 = og.tensor(rng.standard_normal((8, 3)) * 0.3, requires_grad=True)
    x = og.tensor(rng.standard_normal((2, 4)))
    t = og.tensor([0, 2])
    tape = og.current_tape()

    def step(i):
        loss = og.cross_entropy((x @ w1).relu() @ w2, t)
        if i % 3 == 0:
            return  # evaluated with recording on, never backpropagated
        loss.backward()
        for w in (w1, w2):
            w.data = w.data - 0.01 * w.grad.data
            w.grad = None

    for i in range(200):  # warm up caches, then measure
        step(i)
    gc.collect()
    ops_before, tensors_before = _live(Operation), _live(og.Tensor)
    for i in range(5000):
        step(i)
        assert len(tape._refs) < 2048  # the weak list is compacted, never unbounded
    gc.collect()
    assert len(tape.ops) == 0
    assert _live(Operation) <= ops_before + 5
    assert _live(og.Tensor) <= tensors_before + 5


# ------------------------------------------------------------ heap tuning
def _glibc():
    import ctypes
    try:
        ctypes.CDLL(None).gnu_get_libc_version
        return True
    except (OSError, AttributeError):
        return False


def _malloc_state(env):
    import json
    import os
    import subprocess
    import sys
    code = ("import json; from opgraph.backends import memory; "
            "print(json.dumps(memory.state))")
    clean = {k: v for k, v in os.environ.items()
             if k not in ("OPGRAPH_MALLOC_TUNING", "MALLOC_TRIM_THRESHOLD_",
                          "MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES")}
    out = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def test_importing_opgraph_tunes_glibc_malloc_unless_told_otherwise():
    import pytest
    if not _glibc():
        assert _malloc_state({}) == {"tuned": False, "why": "the C library is not glibc"}
        pytest.skip("not glibc: nothing is tuned")
    assert _malloc_state({}) == {"tuned": True, "why": None}
    assert _malloc_state({"OPGRAPH_MALLOC_TUNING": "0"}) == {
        "tuned": False, "why": "OPGRAPH_MALLOC_TUNING=0"}
    # a setting the user made wins
    for name in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES"):
        value = "glibc.malloc.trim_threshold=1" if name == "GLIBC_TUNABLES" else "131072"
        assert _malloc_state({name: value}) == {
            "tuned": False, "why": f"the environment sets {name}"}


def test_tune_malloc_is_idempotent():
    from opgraph.backends import memory
    first = memory.tune_malloc()
    assert memory.tune_malloc() == first
    assert first == (memory.state["why"] is None)
