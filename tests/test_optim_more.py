"""RMSprop, Adagrad, maximize, closures, hyper-parameter checks, and every learning-rate
scheduler, against NumPy and hand transcriptions of the torch.optim algorithms."""
import math

import numpy as np
import pytest

import opgraph
from opgraph import nn, optim
from checks import normal_grads, run_optimizer
from opgraph.optim import lr_scheduler as sched


def _rmsprop_reference(p, grads, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0,
                       momentum=0.0, centered=False, maximize=False):
    p = p.copy()
    v, m, buf, trail = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p), []
    for g in grads:
        g = -g if maximize else g
        g = g + weight_decay * p
        v = alpha * v + (1 - alpha) * g * g
        if centered:
            m = m + (1 - alpha) * (g - m)
            avg = np.sqrt(v - m * m) + eps
        else:
            avg = np.sqrt(v) + eps
        if momentum:
            buf = momentum * buf + g / avg
            p = p - lr * buf
        else:
            p = p - lr * g / avg
        trail.append(p)
    return trail


def _adagrad_reference(p, grads, lr=1e-2, lr_decay=0.0, weight_decay=0.0,
                       initial_accumulator_value=0.0, eps=1e-10, maximize=False):
    p = p.copy()
    s, trail = np.full_like(p, initial_accumulator_value), []
    for t, g in enumerate(grads, start=1):
        g = -g if maximize else g
        g = g + weight_decay * p
        clr = lr / (1 + (t - 1) * lr_decay)
        s = s + g * g
        p = p - clr * g / (np.sqrt(s) + eps)
        trail.append(p)
    return trail


@pytest.mark.parametrize("kwargs", [
    dict(), dict(lr=0.05, momentum=0.9), dict(centered=True, alpha=0.9),
    dict(centered=True, momentum=0.5, weight_decay=0.1, eps=1e-3), dict(maximize=True)])
def test_rmsprop_matches_the_torch_algorithm(backend, kwargs):
    p0 = np.random.default_rng(1).standard_normal((2, 3))
    got = run_optimizer(optim.RMSprop, kwargs, backend, p0, normal_grads((2, 3)))
    for a, b in zip(got, _rmsprop_reference(p0, normal_grads((2, 3)), **kwargs)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kwargs", [
    dict(), dict(lr=0.1, lr_decay=0.1, weight_decay=0.05, initial_accumulator_value=0.3),
    dict(maximize=True, eps=1e-3)])
def test_adagrad_matches_the_torch_algorithm(backend, kwargs):
    p0 = np.random.default_rng(2).standard_normal(4)
    got = run_optimizer(optim.Adagrad, kwargs, backend, p0, normal_grads(4))
    for a, b in zip(got, _adagrad_reference(p0, normal_grads(4), **kwargs)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_defaults_follow_torch():
    p = nn.Parameter(opgraph.ones(2))
    assert optim.RMSprop([p]).defaults == dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0,
                                               momentum=0.0, centered=False, maximize=False)
    assert optim.Adagrad([p]).defaults == dict(lr=1e-2, lr_decay=0.0, weight_decay=0.0,
                                               initial_accumulator_value=0.0, eps=1e-10,
                                               maximize=False)


def test_maximize_ascends_and_a_closure_is_evaluated():
    p = nn.Parameter(opgraph.tensor([1.0]))
    opt = optim.SGD([p], lr=0.1, maximize=True)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == pytest.approx(1.0) and p.item() == pytest.approx(1.2)


@pytest.mark.parametrize("make", [
    lambda p: optim.RMSprop([p], lr=np.float64(0.1), alpha=np.float64(0.9), eps=np.float64(1e-8),
                            momentum=np.float64(0.5), weight_decay=np.float64(0.01),
                            centered=True),
    lambda p: optim.Adagrad([p], lr=np.float64(0.1), lr_decay=np.float64(0.01),
                            eps=np.float64(1e-10), weight_decay=np.float64(0.1)),
    lambda p: optim.SGD([p], lr=np.float64(0.1), momentum=np.float64(0.9)),
    lambda p: optim.Adam([p], lr=np.float64(0.1), betas=(np.float64(0.8), np.float32(0.9)),
                         eps=np.float64(1e-8), weight_decay=np.float64(0.1)),
    lambda p: optim.AdamW([p], lr=np.float64(0.1), weight_decay=np.float64(0.1))])
def test_numpy_scalar_hyper_parameters_keep_float32(make, backend):
    p = nn.Parameter(opgraph.ones(3, backend=backend))
    opt = make(p)
    for _ in range(2):
        p.grad = opgraph.ones(3, backend=backend)
        opt.step()
    assert p.dtype == np.float32
    for key, value in opt.state[id(p)].items():
        if hasattr(value, "dtype"):
            assert value.dtype == np.float32, key


@pytest.mark.parametrize("make, error, match", [
    (lambda p: optim.SGD([p], lr="a"), TypeError, r"SGD: lr must be a number, got str 'a'"),
    (lambda p: optim.SGD([p], lr=float("nan")), ValueError, r"SGD: lr must be in \[0, inf\], got nan"),
    (lambda p: optim.SGD([p], lr=-0.1), ValueError, r"SGD: lr must be in \[0, inf\], got -0.1"),
    (lambda p: optim.SGD([p], momentum=-0.9), ValueError, r"SGD: momentum must be in"),
    (lambda p: optim.SGD([p], weight_decay=float("nan")), ValueError, r"SGD: weight_decay"),
    (lambda p: optim.SGD([p], lr=None), TypeError, r"SGD: lr must be a number, got NoneType"),
    (lambda p: optim.Adam([p], eps=-1e-8), ValueError, r"Adam: eps must be in \[0, inf\]"),
    (lambda p: optim.Adam([p], betas=(0.9, 1.0)), ValueError,
     r"Adam: betas\[1\] must be in \[0, 1\), got 1.0"),
    (lambda p: optim.Adam([p], betas=(float("nan"), 0.9)), ValueError, r"Adam: betas\[0\]"),
    (lambda p: optim.Adam([p], betas=0.9), ValueError, r"Adam: betas must be a pair"),
    (lambda p: optim.AdamW([p], lr=float("nan")), ValueError, r"AdamW: lr must be in"),
    (lambda p: optim.AdamW([p], weight_decay=-1), ValueError, r"AdamW: weight_decay must be in"),
    (lambda p: optim.RMSprop([p], alpha=-0.5), ValueError, r"RMSprop: alpha must be in"),
    (lambda p: optim.RMSprop([p], momentum="x"), TypeError, r"RMSprop: momentum must be a number"),
    (lambda p: optim.Adagrad([p], lr_decay=-1), ValueError, r"Adagrad: lr_decay must be in"),
    (lambda p: optim.Adagrad([p], initial_accumulator_value=-1), ValueError,
     r"Adagrad: initial_accumulator_value must be in"),
])
def test_bad_hyper_parameters_fail_at_construction(make, error, match):
    with pytest.raises(error, match=match):
        make(nn.Parameter(opgraph.ones(2)))


# ---------------------------------------------------------------------------
# learning-rate schedulers


def _lrs(make, steps=12, lr=0.1, opt_cls=optim.SGD, metric=None):
    p = nn.Parameter(opgraph.ones(1))
    opt = opt_cls([p], lr=lr)
    s = make(opt)
    seen = [s.get_last_lr()[0]]
    for i in range(steps):
        p.grad = opgraph.ones(1)
        opt.step()
        s.step() if metric is None else s.step(metric[i])
        seen.append(s.get_last_lr()[0])
        assert opt.param_groups[0]["lr"] == seen[-1]
    return seen


def test_step_multistep_exponential_follow_their_closed_forms():
    np.testing.assert_allclose(_lrs(lambda o: sched.StepLR(o, 3, gamma=0.5)),
                               [0.1 * 0.5 ** (t // 3) for t in range(13)], rtol=1e-15)
    marks = [2, 5, 5, 9]
    np.testing.assert_allclose(_lrs(lambda o: sched.MultiStepLR(o, marks, gamma=0.1)),
                               [0.1 * 0.1 ** sum(m <= t for m in marks) for t in range(13)],
                               rtol=1e-12)
    np.testing.assert_allclose(_lrs(lambda o: sched.ExponentialLR(o, 0.9)),
                               [0.1 * 0.9 ** t for t in range(13)], rtol=1e-12)


def test_cosine_annealing_follows_the_cosine_and_continues_periodically():
    got = _lrs(lambda o: sched.CosineAnnealingLR(o, T_max=5, eta_min=0.01), steps=15)
    want = [0.01 + 0.09 * (1 + math.cos(math.pi * t / 5)) / 2 for t in range(16)]
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-15)


def test_lambda_multiplicative_constant_linear():
    np.testing.assert_allclose(_lrs(lambda o: sched.LambdaLR(o, lambda e: 1 / (1 + e))),
                               [0.1 / (1 + t) for t in range(13)], rtol=1e-15)
    np.testing.assert_allclose(_lrs(lambda o: sched.MultiplicativeLR(o, lambda e: 0.5)),
                               [0.1 * 0.5 ** t for t in range(13)], rtol=1e-15)
    np.testing.assert_allclose(_lrs(lambda o: sched.ConstantLR(o, 0.5, total_iters=4)),
                               [0.05] * 4 + [0.1] * 9, rtol=1e-15)
    got = _lrs(lambda o: sched.LinearLR(o, 0.2, 1.0, total_iters=4))
    np.testing.assert_allclose(got, [0.1 * (0.2 + 0.8 * min(t, 4) / 4) for t in range(13)],
                               rtol=1e-12)


def _one_cycle_reference(max_lr, total, pct=0.3, div=25.0, final_div=1e4):
    initial, low = max_lr / div, max_lr / div / final_div
    up = float(pct * total) - 1
    out = []
    for t in range(total):
        if t <= up:
            frac, a, b = t / up, initial, max_lr
        else:
            frac, a, b = (t - up) / (total - 1 - up), max_lr, low
        out.append(b + (a - b) / 2 * (math.cos(math.pi * frac) + 1))
    return out


def test_one_cycle_lr_and_momentum():
    p = nn.Parameter(opgraph.ones(1))
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    s = sched.OneCycleLR(opt, max_lr=1.0, total_steps=20)
    lrs, moms = [s.get_last_lr()[0]], [opt.param_groups[0]["momentum"]]
    for _ in range(19):
        s.step()
        lrs.append(s.get_last_lr()[0])
        moms.append(opt.param_groups[0]["momentum"])
    np.testing.assert_allclose(lrs, _one_cycle_reference(1.0, 20), rtol=1e-12)
    assert moms[0] == pytest.approx(0.95) and min(moms) == pytest.approx(0.85)
    assert int(np.argmax(lrs)) == int(np.argmin(moms)) == 5
    with pytest.raises(ValueError, match=r"OneCycleLR: tried to step 21 times; total_steps "
                                         r"is 20"):
        s.step()
        s.step()
    adam = optim.Adam([p], lr=0.1)
    sched.OneCycleLR(adam, max_lr=0.5, epochs=2, steps_per_epoch=5)
    assert adam.param_groups[0]["betas"] == (0.95, 0.999)  # beta1 cycles for Adam
    with pytest.raises(ValueError, match=r"OneCycleLR: cycle_momentum needs an optimizer"):
        sched.OneCycleLR(optim.Adagrad([p]), max_lr=1.0, total_steps=10)


def test_reduce_lr_on_plateau():
    metric = [1.0, 0.9, 0.9, 0.9, 0.9, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
    got = _lrs(lambda o: sched.ReduceLROnPlateau(o, factor=0.5, patience=2), metric=metric)
    # bad epochs at 0.9: 1, 2, 3 > patience -> halve after the 5th value; then 0.5 improves,
    # and every three more bad epochs halve again
    assert got == [0.1] * 5 + [0.05] * 4 + [0.025] * 3 + [0.0125]
    cool = _lrs(lambda o: sched.ReduceLROnPlateau(o, factor=0.5, patience=0, cooldown=2,
                                                  min_lr=0.03), metric=[1.0] * 12)
    assert cool == [0.1, 0.1, 0.05, 0.05, 0.05, 0.03] + [0.03] * 7
    up = _lrs(lambda o: sched.ReduceLROnPlateau(o, mode="max", threshold_mode="abs",
                                                threshold=0.1, patience=1),
              metric=[1.0, 1.05, 1.2, 1.2, 1.2, 1.2, 1.2, 1.2, 1.2, 1.2, 1.2, 1.2])
    # 1.05 is no improvement (abs threshold 0.1); 1.2 is; then two bad epochs reduce
    np.testing.assert_allclose(up[:8], [0.1] * 5 + [0.01] * 2 + [0.001], rtol=1e-12)


def test_scheduler_state_dict_resumes_the_sequence():
    def make(o):
        return sched.CosineAnnealingLR(o, T_max=7)
    full = _lrs(make, steps=10)
    p = nn.Parameter(opgraph.ones(1))
    opt = optim.SGD([p], lr=0.1)
    s = make(opt)
    for _ in range(4):
        s.step()
    saved_s, saved_o = s.state_dict(), opt.state_dict()
    assert "optimizer" not in saved_s and saved_s["last_epoch"] == 4
    opt2 = optim.SGD([nn.Parameter(opgraph.ones(1))], lr=0.1)
    opt2.load_state_dict(saved_o)
    s2 = make(opt2)
    s2.load_state_dict(saved_s)
    rest = []
    for _ in range(6):
        s2.step()
        rest.append(s2.get_last_lr()[0])
    np.testing.assert_allclose(rest, full[5:], rtol=1e-12)
    lam = sched.LambdaLR(optim.SGD([p], lr=0.1), lambda e: 0.5)
    assert lam.state_dict()["lr_lambdas"] == [None]  # functions are not saved, as torch


def test_schedulers_keep_per_group_learning_rates():
    a, b = nn.Parameter(opgraph.ones(1)), nn.Parameter(opgraph.ones(1))
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 1.0}], lr=0.1)
    s = sched.StepLR(opt, 1, gamma=0.5)
    s.step()
    assert s.get_last_lr() == [0.05, 0.5]
    assert [g["initial_lr"] for g in opt.param_groups] == [0.1, 1.0]


@pytest.mark.parametrize("make, error, match", [
    (lambda o: sched.StepLR(o, 0), ValueError, r"StepLR: step_size must be an int >= 1, got 0"),
    (lambda o: sched.StepLR(o, 2, gamma=float("nan")), ValueError, r"StepLR: gamma must be in"),
    (lambda o: sched.StepLR("sgd", 2), TypeError, r"StepLR: expects an opgraph.optim Optimizer"),
    (lambda o: sched.CosineAnnealingLR(o, T_max=0), ValueError, r"CosineAnnealingLR: T_max"),
    (lambda o: sched.ExponentialLR(o, gamma="x"), TypeError, r"ExponentialLR: gamma must be"),
    (lambda o: sched.MultiStepLR(o, [2, -1]), ValueError, r"MultiStepLR: milestone must be"),
    (lambda o: sched.LambdaLR(o, 3), TypeError, r"LambdaLR: lr_lambda must be callable"),
    (lambda o: sched.LambdaLR(o, [abs, abs]), ValueError, r"LambdaLR: expected 1 lr_lambdas"),
    (lambda o: sched.OneCycleLR(o, 1.0), ValueError, r"OneCycleLR: give total_steps"),
    (lambda o: sched.OneCycleLR(o, 1.0, total_steps=10, pct_start=1.5), ValueError,
     r"OneCycleLR: pct_start must be in \[0, 1\]"),
    (lambda o: sched.OneCycleLR(o, 1.0, total_steps=10, anneal_strategy="exp"), ValueError,
     r"OneCycleLR: anneal_strategy must be 'cos' or 'linear'"),
    (lambda o: sched.ReduceLROnPlateau(o, factor=1.0), ValueError,
     r"ReduceLROnPlateau: factor must be in \[0, 1\), got 1.0"),
    (lambda o: sched.ReduceLROnPlateau(o, mode="up"), ValueError,
     r"ReduceLROnPlateau: mode must be 'min' or 'max'"),
    (lambda o: sched.StepLR(o, 2, last_epoch=3), KeyError, r"initial_lr"),
])
def test_bad_scheduler_arguments(make, error, match):
    opt = optim.SGD([nn.Parameter(opgraph.ones(1))], lr=0.1)
    with pytest.raises(error, match=match):
        make(opt)
