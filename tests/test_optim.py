"""opgraph.optim against NumPy transcriptions of the torch.optim algorithms, on every backend."""
import math

import numpy as np
import pytest

import opgraph
from opgraph import nn, optim
from checks import normal_grads, run_optimizer


def _sgd_reference(p, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    """torch.optim.SGD, step by step."""
    p, buf, trail = p.copy(), None, []
    for g in grads:
        g = g + weight_decay * p
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
        trail.append(p)
    return trail


def _adam_reference(p, grads, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                    amsgrad=False, decoupled=False):
    """torch.optim.Adam / AdamW, step by step."""
    p = p.copy()
    m, v, vmax, trail = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p), []
    for t, g in enumerate(grads, start=1):
        if weight_decay and decoupled:
            p = p * (1 - lr * weight_decay)
        elif weight_decay:
            g = g + weight_decay * p
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        if amsgrad:
            vmax = np.maximum(vmax, v)
        denom = np.sqrt(vmax if amsgrad else v) / math.sqrt(1 - betas[1] ** t) + eps
        p = p - lr / (1 - betas[0] ** t) * m / denom
        trail.append(p)
    return trail


SGD_CASES = [
    dict(lr=0.1),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.1),
    dict(lr=0.05, momentum=0.8, nesterov=True),
    dict(lr=0.1, momentum=0.5, weight_decay=0.01),
]


@pytest.mark.parametrize("kwargs", SGD_CASES, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()))
def test_sgd_matches_the_torch_algorithm(backend, kwargs):
    p0 = np.random.default_rng(1).standard_normal((3, 4))
    grads = normal_grads(p0.shape)
    got = run_optimizer(optim.SGD, kwargs, backend, p0, grads)
    want = _sgd_reference(p0, grads, **kwargs)
    for step, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14, err_msg=f"step {step}")


ADAM_CASES = [
    dict(lr=1e-2),
    dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6),
    dict(lr=1e-2, weight_decay=0.1),
    dict(lr=1e-2, amsgrad=True),
]


@pytest.mark.parametrize("kwargs", ADAM_CASES, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()))
def test_adam_matches_the_torch_algorithm(backend, kwargs):
    p0 = np.random.default_rng(2).standard_normal((4, 2))
    grads = normal_grads(p0.shape, seed=3)
    got = run_optimizer(optim.Adam, kwargs, backend, p0, grads)
    want = _adam_reference(p0, grads, **kwargs)
    for step, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14, err_msg=f"step {step}")


def test_adamw_decouples_weight_decay(backend):
    p0 = np.random.default_rng(4).standard_normal(6)
    grads = normal_grads(p0.shape, seed=5)
    got = run_optimizer(optim.AdamW, dict(lr=1e-2, weight_decay=0.1), backend, p0, grads)
    want = _adam_reference(p0, grads, lr=1e-2, weight_decay=0.1, decoupled=True)
    np.testing.assert_allclose(got[-1], want[-1], rtol=1e-12)
    coupled = _adam_reference(p0, grads, lr=1e-2, weight_decay=0.1)
    assert not np.allclose(got[-1], coupled[-1], rtol=1e-9, atol=0)


def test_the_first_adam_step_moves_each_entry_by_lr():
    # m_hat / sqrt(v_hat) = g / |g| at step 1, whatever the scale of g
    p0 = np.zeros(4)
    g = np.array([3.0, -0.001, 250.0, -7.0])
    (p1,) = run_optimizer(optim.Adam, dict(lr=0.1, eps=0.0), opgraph.get_default_backend(), p0, [g])
    np.testing.assert_allclose(p1, -0.1 * np.sign(g), rtol=1e-12)


def test_float32_parameters_stay_float32():
    lin = nn.Linear(3, 2)
    opt = optim.Adam(lin.parameters(), lr=0.1)
    lin(opgraph.ones(4, 3)).sum().backward()
    opt.step()
    assert all(p.dtype == np.float32 and p.data.dtype == np.float32 for p in lin.parameters())


def test_parameters_without_grad_are_skipped_and_zero_grad_clears():
    a = nn.Parameter(opgraph.ones(2))
    b = nn.Parameter(opgraph.ones(2))
    opt = optim.SGD([a, b], lr=1.0)
    (a * 3).sum().backward()
    opt.step()
    np.testing.assert_allclose(a.numpy(), [-2, -2])
    np.testing.assert_allclose(b.numpy(), [1, 1])
    opt.zero_grad()
    assert a.grad is None and b.grad is None
    (a * 3).sum().backward()
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(a.grad.numpy(), [0, 0])


def test_param_groups_have_their_own_settings():
    a = nn.Parameter(opgraph.ones(1))
    b = nn.Parameter(opgraph.ones(1))
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    (a + b).sum().backward()
    opt.step()
    assert a.item() == pytest.approx(0.9) and b.item() == pytest.approx(0.5)
    assert [g["lr"] for g in opt.state_dict()["param_groups"]] == [0.1, 0.5]


def test_bad_arguments_are_rejected():
    p = nn.Parameter(opgraph.ones(2))
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="lr"):
        optim.SGD([p], lr=-1)
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam([p], betas=(1.0, 0.9))
    with pytest.raises(ValueError, match="can't optimize a non-leaf Tensor"):
        optim.Adam([p * 2])
    with pytest.raises(TypeError, match="params must be an iterable of Tensors or dicts"):
        optim.SGD(p, lr=0.1)  # not its rows
    with pytest.raises(TypeError, match="not a set"):
        optim.SGD({p}, lr=0.1)
    with pytest.raises(TypeError, match="must be Tensors"):
        optim.Adam([np.ones(2)])


def test_a_step_records_nothing_on_the_tape():
    lin = nn.Linear(2, 2)
    opt = optim.Adam(lin.parameters())
    lin(opgraph.ones(1, 2)).sum().backward()
    with opgraph.Tape() as tape:
        opt.step()
    assert len(tape.ops) == 0
    assert all(p.op is None and p.is_leaf for p in lin.parameters())


@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.2, momentum=0.3),
                                  lambda ps: optim.Adam(ps, lr=0.2, betas=(0.5, 0.9))],
                         ids=["sgd", "adam"])
def test_optimizers_minimise_a_quadratic(backend, make):
    target = np.array([1.0, -2.0, 3.0])
    x = nn.Parameter(opgraph.zeros(3, dtype=np.float64, backend=backend))
    t = opgraph.tensor(target, backend=backend)
    opt = make([x])
    for _ in range(50):
        opt.zero_grad()
        d = x - t
        (d * d).sum().backward()
        opt.step()
    np.testing.assert_allclose(x.numpy(), target, atol=1e-3)


@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
                                  lambda ps: optim.Adam(ps, lr=0.1)], ids=["sgd", "adam"])
def test_the_optimizer_keeps_working_after_module_to(backend, make):
    """Momentum buffers follow the parameters to their new backend."""
    x = np.arange(6, dtype=np.float32).reshape(2, 3) / 6

    def train(move):
        nn.manual_seed(0)
        model = nn.Linear(3, 1)
        opt = make(model.parameters())
        for step in range(3):
            if step == 1 and move:
                model.to(backend)
            opt.zero_grad()
            model(opgraph.tensor(x, backend=model.weight.backend)).sum().backward()
            opt.step()
        return [p.numpy() for p in model.parameters()], model

    moved, model = train(True)
    assert model.weight.backend is backend
    for a, b in zip(moved, train(False)[0]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make", [lambda ps: optim.Adam(ps, lr=0.1, amsgrad=True),
                                  lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9)])
def test_state_dict_resumes_training_exactly(make):
    """Stop after three steps, restore into a fresh optimizer, and the next steps agree."""
    grads = normal_grads((3,), steps=6)
    a = nn.Parameter(opgraph.tensor(np.ones(3), dtype=np.float64))
    opt_a = make([a])
    for g in grads[:3]:
        a.grad = opgraph.tensor(g)
        opt_a.step()
    saved = opt_a.state_dict()
    b = nn.Parameter(opgraph.tensor(a.numpy()))
    opt_b = make([b])
    opt_b.load_state_dict(saved)
    for g in grads[3:]:
        for p, opt in ((a, opt_a), (b, opt_b)):
            p.grad = opgraph.tensor(g)
            opt.step()
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert saved["param_groups"][0]["params"] == [0]


def test_load_state_dict_checks_before_changing_anything():
    p = nn.Parameter(opgraph.ones(2))
    opt = optim.Adam([p], lr=0.1)
    p.grad = opgraph.ones(2)
    opt.step()
    good = opt.state_dict()
    other = optim.Adam([nn.Parameter(opgraph.ones(2)), nn.Parameter(opgraph.ones(2))])
    with pytest.raises(ValueError, match="group 0 has 2 parameters, the state dict 1"):
        other.load_state_dict(good)
    wrong = optim.Adam([nn.Parameter(opgraph.ones(3))], lr=0.5)
    with pytest.raises(ValueError, match=r"exp_avg of parameter 0 has shape \(2,\)"):
        wrong.load_state_dict(good)
    assert wrong.state == {} and wrong.param_groups[0]["lr"] == 0.5


def test_a_frozen_parameter_is_accepted_and_left_alone():
    # torch's fine-tuning idiom: requires_grad_(False) on some layers, all of them passed
    lin = nn.Linear(2, 1)
    lin.bias.requires_grad_(False)
    bias = lin.bias.numpy().copy()
    opt = optim.SGD(lin.parameters(), lr=0.1)
    lin(opgraph.ones(1, 2)).sum().backward()
    opt.step()
    np.testing.assert_array_equal(lin.bias.numpy(), bias)
    np.testing.assert_allclose(lin.weight.grad.numpy(), [[1.0, 1.0]])


def test_duplicate_parameters_warn_and_are_updated_once():
    p = nn.Parameter(opgraph.ones(1))
    with pytest.warns(UserWarning, match="optimizer contains a parameter group with duplicate "
                                         "parameters"):
        opt = optim.SGD([p, p], lr=0.1)
    assert len(opt.param_groups[0]["params"]) == 1
    (p * 1).sum().backward()
    opt.step()
    np.testing.assert_allclose(p.numpy(), [0.9])
    for make in (lambda: optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1),
                 lambda: optim.Adam([p]).add_param_group({"params": p})):
        with pytest.raises(ValueError, match="some parameters appear in more than one "
                                             "parameter group"):
            make()
