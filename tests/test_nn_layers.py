"""The layers of opgraph.nn beyond the basics: normalization (running statistics as torch),
convolution options, pooling, containers, loss modules, gradient clipping, and the checks
of sizes and hyper-parameters at construction. References are NumPy."""
import math

import numpy as np
import pytest

import opgraph as og
from opgraph import nn
from checks import conv2d_ref


# ---------------------------------------------------------------------------
# BatchNorm and LayerNorm


@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
def test_batchnorm2d_running_statistics_follow_torch(momentum, backend):
    rng = np.random.default_rng(0)
    bn = nn.BatchNorm2d(3, momentum=momentum, dtype=np.float64, backend=backend)
    mean, var = np.zeros(3), np.ones(3)
    for step in range(1, 4):
        x = rng.standard_normal((4, 3, 2, 3)) * 2 + step
        y = bn(og.tensor(x, backend=backend))
        m, v = x.mean((0, 2, 3)), x.var((0, 2, 3))
        want = (x - m[:, None, None]) / np.sqrt(v[:, None, None] + 1e-5)
        np.testing.assert_allclose(y.numpy(), want, rtol=1e-10, atol=1e-12)
        f = 1.0 / step if momentum is None else momentum
        unbiased = v * x[:, 0].size / (x[:, 0].size - 1)
        mean, var = (1 - f) * mean + f * m, (1 - f) * var + f * unbiased
        np.testing.assert_allclose(bn.running_mean.numpy(), mean, rtol=1e-12)
        np.testing.assert_allclose(bn.running_var.numpy(), var, rtol=1e-12)
        assert int(bn.num_batches_tracked.item()) == step
    bn.eval()
    x = rng.standard_normal((2, 3, 2, 2))
    want = (x - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5)
    np.testing.assert_allclose(bn(og.tensor(x, backend=backend)).numpy(), want, rtol=1e-10)
    np.testing.assert_allclose(bn.running_mean.numpy(), mean)  # eval leaves them alone


def test_batchnorm_gradients_and_affine_parameters():
    rng = np.random.default_rng(1)
    bn = nn.BatchNorm1d(4, dtype=np.float64)
    bn.weight.data = rng.standard_normal(4)
    bn.bias.data = rng.standard_normal(4)
    x = og.tensor(rng.standard_normal((5, 4, 3)), requires_grad=True)
    assert og.gradcheck(lambda x, w, b: nn.functional.batch_norm(x, None, None, w, b, True),
                        [x, bn.weight, bn.bias])
    y = bn(x)
    y.sum().backward()
    np.testing.assert_allclose(bn.bias.grad.numpy(), np.full(4, 15.0))
    np.testing.assert_allclose(x.grad.numpy(), 0, atol=1e-12)  # Σ over a normalized sum


def test_batchnorm_state_dict_modes_and_options():
    bn = nn.BatchNorm2d(2)
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var",
                                     "num_batches_tracked"]
    assert bn.state_dict()["num_batches_tracked"].dtype == np.int64
    assert [n for n, _ in bn.named_parameters()] == ["weight", "bias"]
    bn(og.randn(3, 2, 2, 2, seed=0))
    fresh = nn.BatchNorm2d(2)
    fresh.load_state_dict(bn.state_dict())
    for key in ("running_mean", "running_var", "num_batches_tracked"):
        np.testing.assert_array_equal(fresh.state_dict()[key].numpy(),
                                      bn.state_dict()[key].numpy())
    plain = nn.BatchNorm1d(3, affine=False, track_running_stats=False)
    assert list(plain.state_dict()) == [] and list(plain.parameters()) == []
    x = np.random.default_rng(2).standard_normal((6, 3)).astype(np.float32)
    plain.eval()  # no running statistics: batch statistics even in eval mode
    np.testing.assert_allclose(plain(og.tensor(x)).numpy(),
                               (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5), rtol=1e-4, atol=1e-5)
    bn.reset_running_stats()
    assert bn.running_mean.tolist() == [0, 0] and bn.num_batches_tracked.item() == 0


def test_batchnorm_input_errors():
    with pytest.raises(ValueError, match=r"BatchNorm2d: expected 4D input, got 3D input"):
        nn.BatchNorm2d(3)(og.zeros(2, 3, 4))
    with pytest.raises(ValueError, match=r"BatchNorm1d: expected 2D or 3D input, got 4D"):
        nn.BatchNorm1d(3)(og.zeros(2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"BatchNorm1d\(3\): input of shape \(2, 4\) has 4 "
                                         r"channels \(dim 1\), expected 3"):
        nn.BatchNorm1d(3)(og.zeros(2, 4))
    with pytest.raises(ValueError, match=r"batch_norm: expected more than 1 value per channel"):
        nn.BatchNorm1d(3)(og.zeros(1, 3))
    assert nn.BatchNorm1d(3).eval()(og.zeros(1, 3)).shape == (1, 3)


def test_layernorm_matches_numpy_and_has_torch_parameters():
    rng = np.random.default_rng(3)
    ln = nn.LayerNorm((3, 4), eps=1e-3, dtype=np.float64)
    assert ln.weight.shape == (3, 4) and ln.weight.numpy().tolist() == np.ones((3, 4)).tolist()
    ln.weight.data = rng.standard_normal((3, 4))
    ln.bias.data = rng.standard_normal((3, 4))
    x = rng.standard_normal((2, 5, 3, 4))
    m, v = x.mean((2, 3), keepdims=True), x.var((2, 3), keepdims=True)
    want = (x - m) / np.sqrt(v + 1e-3) * ln.weight.numpy() + ln.bias.numpy()
    np.testing.assert_allclose(ln(og.tensor(x)).numpy(), want, rtol=1e-10, atol=1e-12)
    assert list(nn.LayerNorm(4, bias=False).state_dict()) == ["weight"]
    assert list(nn.LayerNorm(4, elementwise_affine=False).state_dict()) == []


# ---------------------------------------------------------------------------
# convolution and pooling layers


@pytest.mark.parametrize("mode, np_mode", [("zeros", "constant"), ("reflect", "reflect"),
                                           ("replicate", "edge"), ("circular", "wrap")])
def test_conv2d_padding_modes_dilation_and_groups(mode, np_mode):
    rng = np.random.default_rng(4)
    conv = nn.Conv2d(4, 6, (3, 2), stride=(1, 2), padding=(2, 1), dilation=(2, 1), groups=2,
                     padding_mode=mode, dtype=np.float64)
    assert conv.weight.shape == (6, 2, 3, 2)
    bound = 1 / math.sqrt(2 * 3 * 2)  # fan_in = in_channels / groups · kh · kw
    assert np.abs(conv.weight.numpy()).max() <= bound
    x = rng.standard_normal((2, 4, 7, 6))
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (1, 1)), mode=np_mode)
    want = conv2d_ref(padded, conv.weight.numpy(), conv.bias.numpy(), stride=(1, 2),
                      dilation=(2, 1), groups=2)
    np.testing.assert_allclose(conv(og.tensor(x)).numpy(), want, rtol=1e-10, atol=1e-12)


def test_conv2d_same_padding_and_conv1d():
    rng = np.random.default_rng(5)
    conv = nn.Conv2d(2, 3, (2, 3), padding="same", bias=False, dtype=np.float64)
    x = rng.standard_normal((1, 2, 5, 4))
    out = conv(og.tensor(x))
    assert out.shape == (1, 3, 5, 4)
    want = conv2d_ref(np.pad(x, ((0, 0), (0, 0), (0, 1), (1, 1))), conv.weight.numpy())
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-10, atol=1e-12)
    c1 = nn.Conv1d(2, 4, 3, stride=2, padding=1, dtype=np.float64)
    assert c1.weight.shape == (4, 2, 3) and c1.kernel_size == (3,)
    s = rng.standard_normal((3, 2, 8))
    want = conv2d_ref(s[:, :, None], c1.weight.numpy()[:, :, None], c1.bias.numpy(), (1, 2),
                      (0, 1))[:, :, 0]
    np.testing.assert_allclose(c1(og.tensor(s)).numpy(), want, rtol=1e-10, atol=1e-12)


def test_pooling_layers():
    x = og.tensor(np.arange(2 * 1 * 4 * 6, dtype=np.float64).reshape(2, 1, 4, 6))
    assert nn.AvgPool2d(2)(x).numpy()[0, 0, 0, 0] == np.mean([0, 1, 6, 7])
    assert nn.MaxPool2d(3, 2, padding=1)(x).shape == (2, 1, 2, 3)
    out, idx = nn.MaxPool2d(2, return_indices=True)(x)
    assert idx.numpy()[0, 0, 0, 0] == 7
    a = nn.AdaptiveAvgPool2d((1, 1))(x)
    np.testing.assert_allclose(a.numpy()[:, :, 0, 0], x.numpy().mean((2, 3)))
    assert nn.AdaptiveAvgPool2d((None, 3))(x).shape == (2, 1, 4, 3)
    seq = og.tensor(np.arange(10.0).reshape(1, 1, 10))
    assert nn.MaxPool1d(2)(seq).tolist() == [[[1, 3, 5, 7, 9]]]
    assert nn.AvgPool1d(5)(seq).tolist() == [[[2, 7]]]
    np.testing.assert_allclose(nn.AdaptiveAvgPool1d(2)(seq).numpy(), [[[2, 7]]])


def test_activation_layers():
    x = np.linspace(-3, 3, 13)
    t = og.tensor(x)
    np.testing.assert_allclose(nn.LeakyReLU(0.1)(t).numpy(), np.where(x > 0, x, 0.1 * x))
    np.testing.assert_allclose(nn.ELU(2.0)(t).numpy(), np.where(x > 0, x, 2 * np.expm1(x)))
    erf = np.vectorize(math.erf)
    np.testing.assert_allclose(nn.GELU()(t).numpy(), 0.5 * x * (1 + erf(x / math.sqrt(2))))
    np.testing.assert_allclose(nn.ReLU6()(og.tensor(x * 3)).numpy(), np.clip(x * 3, 0, 6))
    np.testing.assert_allclose(nn.Softplus()(t).numpy(), np.logaddexp(0, x))
    assert nn.Identity(3, bias=False)(t) is t
    assert "approximate='tanh'" in repr(nn.GELU(approximate="tanh"))


# ---------------------------------------------------------------------------
# containers


def test_module_dict_and_parameter_list_register_their_contents():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.heads = nn.ModuleDict({"a": nn.Linear(2, 3), "b": nn.Linear(2, 1)})
            self.scales = nn.ParameterList([og.ones(3), nn.Parameter(og.zeros(1))])

        def forward(self, x):
            return self.heads["a"](x) * self.scales[0]

    net = Net()
    names = list(net.state_dict())
    assert names == ["heads.a.weight", "heads.a.bias", "heads.b.weight", "heads.b.bias",
                     "scales.0", "scales.1"]
    assert len(net.heads) == 2 and "a" in net.heads and list(net.heads) == ["a", "b"]
    net.heads["c"] = nn.Linear(2, 2)
    assert "heads.c.weight" in net.state_dict()
    assert isinstance(net.heads.pop("c"), nn.Linear) and "c" not in net.heads
    assert all(isinstance(p, nn.Parameter) for p in net.scales)
    net(og.ones(4, 2)).sum().backward()
    assert net.scales[0].grad is not None
    ml = nn.ModuleList([nn.ReLU()])
    ml.extend([nn.Tanh()])
    ml.insert(0, nn.Sigmoid())
    assert [type(m).__name__ for m in ml] == ["Sigmoid", "ReLU", "Tanh"]
    with pytest.raises(TypeError, match="ModuleDict: values must be Modules"):
        nn.ModuleDict({"x": 3})


# ---------------------------------------------------------------------------
# loss modules


def test_loss_modules_call_the_functions_with_their_options():
    rng = np.random.default_rng(6)
    logits = og.tensor(rng.standard_normal((5, 3)))
    targets = og.tensor(np.array([0, 2, 1, -100, 2]))
    weight = og.tensor(np.array([1.0, 2.0, 0.5], np.float32))
    ce = nn.CrossEntropyLoss(weight=weight, label_smoothing=0.1)
    assert list(ce.state_dict()) == ["weight"]
    F = nn.functional
    assert ce(logits, targets).item() == pytest.approx(
        F.cross_entropy(logits, targets, weight=weight, label_smoothing=0.1).item())
    logp = logits.log_softmax(1)
    assert nn.NLLLoss(reduction="sum")(logp, targets).item() == pytest.approx(
        F.nll_loss(logp, targets, reduction="sum").item())
    x, y = og.tensor(rng.standard_normal(4)), og.tensor(rng.standard_normal(4))
    d = x.numpy() - y.numpy()
    assert nn.L1Loss()(x, y).item() == pytest.approx(np.abs(d).mean(), rel=1e-6)
    huber = np.where(np.abs(d) < 0.5, 0.5 * d * d / 0.5, np.abs(d) - 0.25)
    assert nn.SmoothL1Loss(beta=0.5)(x, y).item() == pytest.approx(huber.mean(), rel=1e-6)
    p = og.tensor(rng.uniform(0.1, 0.9, 4))
    t = og.tensor(rng.uniform(0, 1, 4))
    bce = -(t.numpy() * np.log(p.numpy()) + (1 - t.numpy()) * np.log(1 - p.numpy()))
    assert nn.BCELoss()(p, t).item() == pytest.approx(bce.mean(), rel=1e-5)
    z = og.tensor(np.log(p.numpy() / (1 - p.numpy())))
    logits_loss = nn.BCEWithLogitsLoss(pos_weight=og.tensor([2.0, 1.0, 1.0, 1.0]))
    assert sorted(logits_loss.state_dict()) == ["pos_weight"]
    pw = np.array([2.0, 1.0, 1.0, 1.0])
    want = -(pw * t.numpy() * np.log(p.numpy()) + (1 - t.numpy()) * np.log(1 - p.numpy()))
    assert logits_loss(z, t).item() == pytest.approx(want.mean(), rel=1e-5)
    assert nn.MSELoss(reduction="sum")(x, y).item() == pytest.approx((d ** 2).sum(), rel=1e-6)
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
        assert nn.MSELoss(reduce=False)(x, y).shape == (4,)  # torch's legacy arguments


# ---------------------------------------------------------------------------
# construction checks


@pytest.mark.parametrize("make, error, match", [
    (lambda: nn.Linear(-1, 2), ValueError, r"Linear: in_features must be positive, got -1"),
    (lambda: nn.Linear(0, 2), ValueError, r"Linear: in_features must be positive, got 0"),
    (lambda: nn.Linear(2, 2.5), TypeError, r"Linear: out_features must be an int, got float 2.5"),
    (lambda: nn.Linear("3", 2), TypeError, r"Linear: in_features must be an int, got str '3'"),
    (lambda: nn.Conv2d(1, 1, 0), ValueError, r"Conv2d: kernel_size must be positive, got 0"),
    (lambda: nn.Conv2d(1, 1, (3, -1)), ValueError, r"Conv2d: kernel_size must be positive"),
    (lambda: nn.Conv2d(0, 1, 3), ValueError, r"Conv2d: in_channels must be positive, got 0"),
    (lambda: nn.Conv2d(1, 1, 3, stride=0), ValueError, r"Conv2d: stride must be positive"),
    (lambda: nn.Conv2d(1, 1, 3, padding=-1), ValueError, r"Conv2d: padding must be >= 0"),
    (lambda: nn.Conv2d(3, 4, 3, groups=2), ValueError,
     r"Conv2d: in_channels \(3\) and out_channels \(4\) must be divisible by groups \(2\)"),
    (lambda: nn.Conv2d(1, 1, 3, stride=2, padding="same"), ValueError,
     r"Conv2d: padding='same' is not supported for strided convolutions"),
    (lambda: nn.Conv2d(1, 1, 3, padding_mode="mirror"), ValueError,
     r"Conv2d: padding_mode must be one of"),
    (lambda: nn.Conv1d(1, 1, (2, 2)), ValueError, r"Conv1d: kernel_size must be an int or 1 ints"),
    (lambda: nn.Embedding(-3, 2), ValueError, r"Embedding: num_embeddings must be positive"),
    (lambda: nn.Embedding(3, 0), ValueError, r"Embedding: embedding_dim must be positive"),
    (lambda: nn.Embedding(3, 2, padding_idx=5), ValueError, r"Embedding: padding_idx must be"),
    (lambda: nn.MaxPool2d(0), ValueError, r"MaxPool2d: kernel_size must be positive, got 0"),
    (lambda: nn.AvgPool2d(2, stride=-1), ValueError, r"AvgPool2d: stride must be positive"),
    (lambda: nn.AdaptiveAvgPool2d(0), ValueError, r"AdaptiveAvgPool2d: output_size must be"),
    (lambda: nn.BatchNorm2d(0), ValueError, r"BatchNorm2d: num_features must be positive"),
    (lambda: nn.BatchNorm1d(3, eps=-1e-5), ValueError,
     r"BatchNorm1d: eps must be in \[0, inf\], got -1e-05"),
    (lambda: nn.BatchNorm1d(3, momentum=float("nan")), ValueError,
     r"BatchNorm1d: momentum must be in \[0, 1\], got nan"),
    (lambda: nn.BatchNorm1d(3, momentum="fast"), TypeError,
     r"BatchNorm1d: momentum must be a number, got str 'fast'"),
    (lambda: nn.LayerNorm(0), ValueError, r"LayerNorm: normalized_shape must be positive"),
    (lambda: nn.LayerNorm(4, eps=float("nan")), ValueError, r"LayerNorm: eps must be in"),
    (lambda: nn.Dropout(-0.1), ValueError, r"Dropout: p must be in \[0, 1\], got -0.1"),
    (lambda: nn.LeakyReLU("a"), TypeError, r"LeakyReLU: negative_slope must be a number"),
    (lambda: nn.GELU("fast"), ValueError, r"GELU: approximate must be 'none' or 'tanh'"),
    (lambda: nn.CrossEntropyLoss(label_smoothing=2), ValueError,
     r"CrossEntropyLoss: label_smoothing must be in \[0.0, 1.0\], got 2.0"),
    (lambda: nn.CrossEntropyLoss(reduction="avg"), ValueError,
     r"CrossEntropyLoss: reduction must be 'mean', 'sum' or 'none', got 'avg'"),
    (lambda: nn.HuberLoss(delta=0), ValueError, r"HuberLoss: delta must be in \(0.0, inf\]"),
])
def test_bad_sizes_and_hyper_parameters_fail_at_construction(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize("call, error, match", [
    (lambda: nn.Linear(3, 2)(og.tensor(1.0)), ValueError,
     r"Linear\(3, 2\): input of shape \(\) has no dims \(0-d\)"),
    (lambda: nn.Linear(3, 2)([1.0, 2.0, 3.0]), TypeError, r"Linear: expects a Tensor, got list"),
    (lambda: nn.Flatten()(og.tensor(1.0)), IndexError, r"Flatten: dim 1 is out of range"),
    (lambda: nn.Flatten(2)(og.zeros(2, 3)), IndexError, r"Flatten: dim 2 is out of range"),
    (lambda: nn.Flatten(0, 5)(og.zeros(2, 3)), IndexError, r"Flatten: dim 5 is out of range"),
])
def test_bad_inputs_to_layers_are_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_numpy_integer_sizes_are_accepted():
    layer = nn.Linear(np.int64(3), np.int32(2))
    assert layer.weight.shape == (2, 3) and isinstance(layer.in_features, int)


# ---------------------------------------------------------------------------
# gradient clipping


def _with_grads(*grads):
    params = []
    for g in grads:
        p = nn.Parameter(og.zeros(*np.shape(g), dtype=np.float64))
        p.grad = og.tensor(np.asarray(g, dtype=np.float64))
        params.append(p)
    return params


@pytest.mark.parametrize("norm_type", [2.0, 1, 3.5, float("inf"), "inf"])
def test_clip_grad_norm_scales_by_the_total_norm(norm_type):
    g1, g2 = np.array([3.0, -4.0]), np.array([[1.0, 2.0], [0.0, -2.0]])
    params = _with_grads(g1, g2)
    flat = np.concatenate([g1, g2.ravel()])
    p = float(norm_type)
    total = np.abs(flat).max() if math.isinf(p) else (np.abs(flat) ** p).sum() ** (1 / p)
    got = nn.utils.clip_grad_norm_(params, max_norm=1.0, norm_type=norm_type)
    assert got.shape == () and got.item() == pytest.approx(total)
    scale = 1.0 / (total + 1e-6)
    np.testing.assert_allclose(params[0].grad.numpy(), g1 * scale)
    np.testing.assert_allclose(params[1].grad.numpy(), g2 * scale)


def test_clip_grad_norm_leaves_small_gradients_and_skips_missing_ones():
    params = _with_grads([0.1, 0.2]) + [nn.Parameter(og.zeros(3))]
    total = nn.utils.clip_grad_norm_(iter(params), 5.0)
    assert total.item() == pytest.approx(math.hypot(0.1, 0.2))
    np.testing.assert_allclose(params[0].grad.numpy(), [0.1, 0.2])
    assert params[1].grad is None
    assert nn.utils.clip_grad_norm_([nn.Parameter(og.zeros(2))], 1.0).item() == 0.0
    bad = _with_grads([np.inf, 1.0])
    with pytest.raises(RuntimeError, match=r"clip_grad_norm_: the total norm of order 2.0 of "
                                           r"the gradients is non-finite"):
        nn.utils.clip_grad_norm_(bad, 1.0, error_if_nonfinite=True)
    with pytest.raises(ValueError, match=r"clip_grad_norm_: max_norm must be in \[0, inf\]"):
        nn.utils.clip_grad_norm_(params, float("nan"))


def test_clip_grad_value_and_parameter_vectors(backend):
    p = nn.Parameter(og.zeros(4, backend=backend))
    p.grad = og.tensor([-3.0, -0.5, 0.2, 9.0], backend=backend)
    assert nn.utils.clip_grad_value_(p, 1.0) is None
    np.testing.assert_allclose(p.grad.numpy(), [-1.0, -0.5, 0.2, 1.0])
    layer = nn.Linear(2, 3, backend=backend)
    vec = nn.utils.parameters_to_vector(layer.parameters())
    assert vec.shape == (9,)
    nn.utils.vector_to_parameters(vec * 0 + 1, layer.parameters())
    assert layer.weight.numpy().tolist() == [[1, 1]] * 3
    with pytest.raises(ValueError, match=r"clip_grad_value_: clip_value must be in"):
        nn.utils.clip_grad_value_(p, -1)


def test_batchnorm_survives_save_and_load(tmp_path):
    bn = nn.BatchNorm2d(2)
    for _ in range(3):
        bn(og.randn(4, 2, 3, 3, seed=1))
    og.save(bn, tmp_path / "bn.npz")
    loaded = og.load(tmp_path / "bn.npz")
    assert loaded["num_batches_tracked"].shape == () and loaded["num_batches_tracked"].item() == 3
    fresh = nn.BatchNorm2d(2)
    fresh.load_state_dict(loaded)
    np.testing.assert_array_equal(fresh.running_var.numpy(), bn.running_var.numpy())
    assert fresh.num_batches_tracked.item() == 3


def test_the_bn_cnn_model_trains_saves_and_loads(tmp_path):
    from opgraph import models, optim
    (x, y), _ = og.data.load_digits()
    og.manual_seed(0)
    model = models.build("bn-cnn", (1, 8, 8), 10)
    kinds = [type(m).__name__ for m in model]
    assert kinds.count("BatchNorm2d") == 2 and kinds.count("Conv2d") == 2
    opt = optim.Adam(model.parameters(), lr=2e-3)
    for xb, yb in og.data.DataLoader((x[:256], y[:256]), batch_size=64, shuffle=True, seed=0):
        opt.zero_grad()
        nn.CrossEntropyLoss()(model(xb), yb).backward()
        opt.step()
    assert model[1].num_batches_tracked.item() == 4
    models.save(model, tmp_path / "bn.npz")
    again = models.load(tmp_path / "bn.npz")
    np.testing.assert_array_equal(models.predict(again, x[:20])[0], models.predict(model, x[:20])[0])
    np.testing.assert_array_equal(again[1].running_mean.numpy(), model[1].running_mean.numpy())


def test_module_apply_double_float_and_to_dtype(backend):
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.Linear(3, 1))
    seen = []

    def init_weights(m):
        seen.append(type(m).__name__)
        if isinstance(m, nn.Linear):
            nn.init.zeros_(m.bias)

    assert model.apply(init_weights) is model
    assert seen == ["Linear", "BatchNorm1d", "Linear", "Sequential"]
    assert model[0].bias.tolist() == [0, 0, 0]
    weight = model[0].weight
    opt = og.optim.SGD(model.parameters(), lr=0.1)
    model.double()
    assert model[0].weight is weight and weight.dtype == np.float64
    assert model[1].running_mean.dtype == np.float64
    assert model[1].num_batches_tracked.dtype == np.int64  # integer buffers keep their dtype
    model(og.ones(4, 2, dtype=np.float64)).sum().backward()
    opt.step()
    assert weight.dtype == np.float64
    model.to(backend, np.float32)
    assert weight.dtype == np.float32 and weight.backend is backend
    assert model.float() is model
    with pytest.raises(TypeError, match=r"Sequential.to: expects a floating-point dtype"):
        model._cast(np.dtype(np.int64))


def test_state_dict_order_shared_modules_and_non_persistent_buffers_follow_torch():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Linear(2, 2))
    assert list(model.state_dict()) == [
        "0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
        "1.num_batches_tracked", "2.weight", "2.bias"]
    lin = nn.Linear(3, 3)
    tied = nn.Sequential(lin, nn.ReLU(), lin)
    assert list(tied.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert len(list(tied.parameters())) == 2
    tied.load_state_dict({k: np.ones(v.shape) for k, v in tied.state_dict().items()})

    class WithCache(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("cache", og.zeros(2), persistent=False)
            self.register_buffer("kept", og.ones(2))

    m = WithCache()
    assert list(m.state_dict()) == ["kept"] and [n for n, _ in m.named_buffers()] == ["cache",
                                                                                       "kept"]
    m.load_state_dict({"kept": np.zeros(2)})


@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf")])
def test_embedding_max_norm_renormalises_the_rows_it_reads_as_torch(norm_type):
    w0 = np.random.default_rng(0).standard_normal((5, 3)) * 2
    weight = og.tensor(w0.copy(), requires_grad=True)
    idx = np.array([[0, 2], [2, 4]])
    out = og.nn.functional.embedding(og.tensor(idx), weight, max_norm=1.5, norm_type=norm_type)
    norms = np.linalg.norm(w0, ord=norm_type, axis=1)
    want = w0.copy()
    for r in np.unique(idx):  # torch's embedding_renorm_, row by row
        if norms[r] > 1.5:
            want[r] *= 1.5 / (norms[r] + 1e-7)
    np.testing.assert_allclose(weight.detach().numpy(), want, rtol=1e-12)  # in place
    np.testing.assert_allclose(out.detach().numpy(), want[idx], rtol=1e-12)
    assert weight._version == 1 and weight.is_leaf
    (out * og.tensor(np.arange(12.0).reshape(2, 2, 3))).sum().backward()
    grad = np.zeros((5, 3))
    np.add.at(grad, idx, np.arange(12.0).reshape(2, 2, 3))
    np.testing.assert_array_equal(weight.grad.numpy(), grad)


def test_embedding_module_max_norm_and_from_pretrained():
    emb = nn.Embedding(4, 3, None, 1.0)  # torch's positional order: max_norm fourth
    emb(og.tensor([0, 1]))
    assert (np.linalg.norm(emb.weight.numpy()[:2], axis=1) <= 1.0 + 1e-6).all()
    table = og.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=np.float64)
    frozen = nn.Embedding.from_pretrained(table)
    assert not frozen.weight.requires_grad and frozen.weight.dtype == np.float64
    assert frozen(og.tensor([1])).tolist() == [[3.0, 4.0]]
    assert nn.Embedding.from_pretrained(table, freeze=False).weight.requires_grad


def test_container_indices_out_of_range_name_the_container():
    seq = nn.Sequential(nn.ReLU(), nn.Tanh())
    assert type(seq[-1]).__name__ == "Tanh" and type(seq[0]).__name__ == "ReLU"
    for call, match in ((lambda: seq[2], r"Sequential: index 2 is out of range \(it holds 2\)"),
                        (lambda: nn.ModuleList([nn.ReLU()])[-2], r"ModuleList: index -2"),
                        (lambda: nn.ParameterList([og.ones(1, requires_grad=True)])[1],
                         r"ParameterList: index 1")):
        with pytest.raises(IndexError, match=match):
            call()
    with pytest.raises(TypeError, match="Sequential: indices must be ints or slices, got str"):
        seq["0"]
