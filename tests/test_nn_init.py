"""nn.init: torch.nn.init's fills, in place on the tensor's own backend, with torch's
bounds and standard deviations, seeded by og.manual_seed."""
import math

import numpy as np
import pytest

import opgraph as og
from opgraph import nn


def _param(*shape, backend=None):
    return nn.Parameter(og.zeros(*shape, dtype=np.float64, backend=backend))


def test_constant_fills_and_eye(backend):
    p = _param(3, 4, backend=backend)
    assert nn.init.ones_(p) is p and (p.numpy() == 1).all()
    nn.init.constant_(p, 2.5)
    assert (p.numpy() == 2.5).all() and p.backend is backend and p.dtype == np.float64
    nn.init.zeros_(p)
    assert (p.numpy() == 0).all()
    np.testing.assert_array_equal(nn.init.eye_(p).numpy(), np.eye(3, 4))


def test_uniform_and_normal_statistics():
    og.manual_seed(0)
    p = _param(200, 300)
    v = nn.init.uniform_(p, -2.0, 3.0).numpy()
    assert v.min() >= -2 and v.max() < 3 and abs(v.mean() - 0.5) < 0.02
    v = nn.init.normal_(p, 1.0, 0.5).numpy()
    assert abs(v.mean() - 1.0) < 0.01 and abs(v.std() - 0.5) < 0.01
    v = nn.init.trunc_normal_(p, 0.0, 1.0, -1.0, 1.5).numpy()
    assert v.min() >= -1.0 and v.max() <= 1.5


def test_fan_based_initialisations_follow_torch_formulas():
    og.manual_seed(1)
    p = _param(64, 32, 3, 3)                          # fan_in 288, fan_out 576
    bound = math.sqrt(6 / (288 + 576))
    v = nn.init.xavier_uniform_(p).numpy()
    assert np.abs(v).max() <= bound and np.abs(v).max() > 0.95 * bound
    v = nn.init.xavier_normal_(p, gain=2.0).numpy()
    assert abs(v.std() - 2 * math.sqrt(2 / (288 + 576))) < 0.01 * 2
    v = nn.init.kaiming_uniform_(p, nonlinearity="relu").numpy()
    k = math.sqrt(2) * math.sqrt(3 / 288)
    assert np.abs(v).max() <= k and np.abs(v).max() > 0.95 * k
    v = nn.init.kaiming_normal_(p, mode="fan_out", nonlinearity="relu").numpy()
    assert abs(v.std() - math.sqrt(2 / 576)) < 0.002
    assert nn.init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert nn.init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))


def test_orthogonal_rows_or_columns_are_orthonormal():
    og.manual_seed(2)
    wide = nn.init.orthogonal_(_param(3, 5)).numpy()
    np.testing.assert_allclose(wide @ wide.T, np.eye(3), atol=1e-12)
    tall = nn.init.orthogonal_(_param(5, 3), gain=2.0).numpy()
    np.testing.assert_allclose(tall.T @ tall, 4 * np.eye(3), atol=1e-12)


def test_manual_seed_makes_fills_reproducible():
    og.manual_seed(5)
    a = nn.init.normal_(_param(4)).numpy()
    og.manual_seed(5)
    np.testing.assert_array_equal(nn.init.normal_(_param(4)).numpy(), a)


@pytest.mark.parametrize("call, match", [
    (lambda: nn.init.xavier_uniform_(_param(3)), r"xavier_uniform_: fan in and fan out need "
                                                 r"a tensor with at least 2 dims"),
    (lambda: nn.init.kaiming_normal_(_param(2, 2), mode="fan"), r"kaiming_normal_: mode must"),
    (lambda: nn.init.calculate_gain("swish"), r"calculate_gain: unsupported nonlinearity"),
    (lambda: nn.init.eye_(_param(2, 2, 2)), r"eye_: expects a 2-D tensor"),
])
def test_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
