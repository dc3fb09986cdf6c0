"""opgraph.set_num_threads: Numba's threads and the BLAS threads of opgraph's products."""
import numpy as np
import pytest

import opgraph as og
from opgraph.backends import threads


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True, None])
def test_set_num_threads_rejects_bad_counts(bad):
    with pytest.raises(ValueError, match="set_num_threads"):
        og.set_num_threads(bad)


def test_products_run_on_the_blas_threads_of_opgraph(monkeypatch):
    libraries = threads._blas_libraries()
    if not libraries:
        pytest.skip("threadpoolctl is not installed: BLAS threads are left to NumPy")
    outside = [lib.get_num_threads() for lib in libraries]
    seen = []
    real = np.matmul

    def spy(a, b):
        seen.append([lib.get_num_threads() for lib in libraries])
        return real(a, b)

    monkeypatch.setattr(threads.np, "matmul", spy)
    be = og.backends.get("numpy")
    big = np.ones((64, 128), np.float32), np.ones((128, 64), np.float32)  # above the threshold
    small = np.ones((4, 4)), np.ones((4, 4))
    try:
        for n in (1, 2):
            monkeypatch.setitem(threads._settings, "blas", n)
            np.testing.assert_array_equal(be.matmul(*big), real(*big))
            assert seen[-1] == [n] * len(libraries)
        be.matmul(*small)  # one thread anyway: left alone
        assert seen[-1] == outside
    finally:
        assert [lib.get_num_threads() for lib in libraries] == outside  # restored


def test_get_num_threads_reports_what_was_set(monkeypatch):
    pytest.importorskip("numba")
    import numba
    before = numba.get_num_threads()
    monkeypatch.setitem(threads._settings, "blas", threads._settings["blas"])
    monkeypatch.setitem(threads._settings, "compiled", threads._settings["compiled"])
    try:
        og.set_num_threads(1)
        assert og.get_num_threads() == 1 and threads.blas_threads() == 1
        assert numba.get_num_threads() == 1
    finally:
        numba.set_num_threads(before)
