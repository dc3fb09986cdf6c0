"""backends.available() lists only backends that really run; an unavailable one says
what to install."""
import numpy as np
import pytest

from opgraph import backends
from opgraph.backends.numpy_backend import NumpyBackend


class _WrongAdd(NumpyBackend):
    name = "wrong_add"

    def binary(self, op, a, b):
        return super().binary(op, a, b) + 1


class _Crashes(NumpyBackend):
    name = "crashes"

    def asarray(self, data, dtype=None):
        raise OSError("no device here")


@pytest.fixture
def registry(monkeypatch):
    monkeypatch.setattr(backends, "_instances", dict(backends._instances))
    monkeypatch.setattr(backends, "_runs", {})
    monkeypatch.setattr(backends, "_registry", dict(backends._registry))
    monkeypatch.setattr(backends, "_requires", dict(backends._requires))
    return backends._registry


def test_available_lists_the_always_present_backends():
    names = backends.available()
    assert names[:2] == ["numpy", "numba"]
    for name in names:
        assert backends.unavailable_reason(name) is None


@pytest.mark.parametrize("cls, why", [(_WrongAdd, r"backend 'wrong_add' cannot run: .*computed"),
                                      (_Crashes, r"backend 'crashes' cannot run: OSError: no device")])
def test_a_backend_that_cannot_run_a_kernel_is_not_available(registry, cls, why):
    registry[cls.name] = (__name__, cls.__name__)
    # creating it may succeed; running a kernel does not
    assert cls.name not in backends.available()
    assert backends.unavailable_reason(cls.name) is not None
    import re
    assert re.match(why, backends.unavailable_reason(cls.name))


def test_a_missing_optional_package_is_named_with_its_install_command(registry):
    registry["needs_pkg"] = (__name__, "_WrongAdd")
    backends._requires["needs_pkg"] = ("no_such_module_xyz", "no-such-pkg: pip install no-such-pkg")
    with pytest.raises(RuntimeError, match=r"backend 'needs_pkg' is unavailable: it needs "
                                           r"no-such-pkg: pip install no-such-pkg"):
        backends.get("needs_pkg")
    assert "needs_pkg" not in backends.available()
    assert "pip install no-such-pkg" in backends.unavailable_reason("needs_pkg")


def test_cuda_is_listed_exactly_when_it_runs():
    reason = backends.unavailable_reason("cuda")
    assert ("cuda" in backends.available()) == (reason is None)
    if reason is None:
        cu = backends.get("cuda")
        np.testing.assert_array_equal(cu.to_numpy(cu.asarray(np.arange(3.0))), [0, 1, 2])
    else:
        assert "numba-cuda" in reason or "NUMBA_ENABLE_CUDASIM" in reason
        with pytest.raises(RuntimeError, match="backend 'cuda' is unavailable"):
            backends.get("cuda")
