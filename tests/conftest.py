"""Shared fixtures. The `backend` fixture runs a test once per available backend:
adding a backend to the conformance suite means adding its name to BACKENDS."""
import os

# Without a GPU the CUDA backend runs on Numba's simulator; this must be set
# before numba.cuda is first imported.
if not os.path.exists("/dev/nvidia0") and "NUMBA_ENABLE_CUDASIM" not in os.environ:
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"

import numpy as np
import pytest

import backends

BACKENDS = ["numpy", "numba", "cuda"]


def _available(name):
    try:
        backends.get(name)
        return True, ""
    except Exception as e:  # report why in the skip reason
        return False, f"{type(e).__name__}: {e}"


@pytest.fixture(params=BACKENDS)
def backend(request):
    ok, why = _available(request.param)
    if not ok:
        pytest.skip(f"backend {request.param} unavailable ({why})")
    return backends.get(request.param)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
