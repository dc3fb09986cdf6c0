"""Shared fixtures. The `backend` fixture runs a test once per available backend:
adding a backend to the conformance suite means adding its name to BACKENDS."""
import importlib.util
import os

# Without a GPU the CUDA backend runs on Numba's simulator; this must be set
# before numba.cuda is first imported.
if not os.path.exists("/dev/nvidia0") and "NUMBA_ENABLE_CUDASIM" not in os.environ:
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"

import numpy as np
import pytest

from opgraph import backends

# checks.py holds tests and checks shared by several test files: rewrite its asserts too
pytest.register_assert_rewrite("checks")

BACKENDS = ["numpy", "numba", "cuda"]
# The one accepted reason to skip a backend: its optional package is not installed.
# Any other failure to create a backend is a test error, not a skip.
OPTIONAL_PACKAGE = {"cuda": ("numba_cuda", "numba-cuda, pip install -e '.[cuda]'")}


def _missing_package(name):
    module, how = OPTIONAL_PACKAGE.get(name, (None, None))
    if module is not None and importlib.util.find_spec(module) is None:
        return f"{module} is not installed ({how})"
    return None


@pytest.fixture(params=BACKENDS)
def backend(request):
    why = _missing_package(request.param)
    if why:
        pytest.skip(f"backend {request.param} not tested: {why}")
    return backends.get(request.param)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _cuda_mode():
    why = _missing_package("cuda")
    if why:
        return f"SKIPPED, {why}"
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return "tested on Numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1, no GPU)"
    try:
        from numba import cuda
        name = cuda.get_current_device().name
        return f"tested on the GPU: {name.decode() if isinstance(name, bytes) else name}"
    except Exception as e:  # the backend tests themselves report the failure
        return f"GPU unusable: {type(e).__name__}: {e}"


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(f"backends: {', '.join(BACKENDS)}; cuda backend {_cuda_mode()}")
