"""opgraph.nn: modules, parameters, initialisation, layers, losses, state dicts, save/load."""
import math

import numpy as np
import pytest

import opgraph
from opgraph import nn


def _naive_conv(x, w, b, stride, padding):
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    oh, ow = (h - kh) // stride + 1, (wd - kw) // stride + 1
    out = np.zeros((n, o, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = x[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            out[:, :, i, j] = np.einsum("nchw,ochw->no", patch, w)
    return out + (b[None, :, None, None] if b is not None else 0)


class TwoLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.act = nn.Tanh()
        self.fc2 = nn.Linear(8, 3, bias=False)
        self.scale = nn.Parameter(opgraph.ones(3))

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x))) * self.scale


# ---------------------------------------------------------------------------
# Parameter and Module


def test_parameter_is_a_leaf_tensor_that_requires_grad():
    p = nn.Parameter(np.zeros((2, 3), dtype=np.float32))
    assert isinstance(p, opgraph.Tensor) and p.requires_grad and p.is_leaf
    assert p.shape == (2, 3) and p.dtype == np.float32
    q = nn.Parameter(opgraph.tensor([1.0, 2.0], dtype=np.float64))
    assert q.dtype == np.float64 and q.requires_grad
    assert "Parameter containing" in repr(q)


def test_named_parameters_are_registered_in_order_and_nested():
    m = TwoLayer()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["scale", "fc1.weight", "fc1.bias", "fc2.weight"]
    assert [tuple(p.shape) for p in m.parameters()] == [(3,), (8, 4), (8,), (3, 8)]
    assert m.num_parameters() == 3 + 32 + 8 + 24
    assert [n for n, _ in m.named_children()] == ["fc1", "act", "fc2"]
    assert len(list(m.modules())) == 4
    assert [n for n, _ in m.named_modules()] == ["", "fc1", "act", "fc2"]


def test_a_shared_parameter_is_listed_once():
    lin = nn.Linear(3, 3)
    seq = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(seq.parameters())) == 2
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias"]


def test_reassigning_and_deleting_attributes_updates_the_registry():
    m = TwoLayer()
    m.fc2 = nn.Identity()
    assert "fc2.weight" not in dict(m.named_parameters())
    del m.scale
    assert [n for n, _ in m.named_parameters()] == ["fc1.weight", "fc1.bias"]


def test_module_without_super_init_gives_a_clear_error():
    class Bad(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(2, 2)

    with pytest.raises(AttributeError, match=r"call super\(\)\.__init__\(\)"):
        Bad()


def test_forward_not_written_raises():
    with pytest.raises(NotImplementedError, match="forward"):
        nn.Module()(1)


def test_train_and_eval_reach_every_submodule():
    m = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Dropout(0.5), nn.ReLU()))
    assert all(mod.training for mod in m.modules())
    assert m.eval() is m
    assert not any(mod.training for mod in m.modules())
    m.train()
    assert all(mod.training for mod in m.modules())


def test_zero_grad_and_backward_reach_every_parameter():
    m = TwoLayer()
    x = opgraph.randn(5, 4, seed=0)
    m(x).sum().backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())


def test_sequential_indexing_len_iteration_and_repr():
    seq = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2))
    assert len(seq) == 3 and isinstance(seq[1], nn.ReLU) and isinstance(seq[-1], nn.Linear)
    assert isinstance(seq[:2], nn.Sequential) and len(seq[:2]) == 2
    assert [type(m).__name__ for m in seq] == ["Linear", "ReLU", "Linear"]
    text = repr(seq)
    assert "(0): Linear(in_features=4, out_features=5, bias=True)" in text and "(1): ReLU()" in text
    seq.append(nn.Sigmoid())
    assert len(seq) == 4
    named = nn.Sequential({"a": nn.Linear(2, 2), "b": nn.ReLU()})
    assert [n for n, _ in named.named_parameters()] == ["a.weight", "a.bias"]


def test_module_list_registers_its_modules():
    ml = nn.ModuleList([nn.Linear(2, 3), nn.Linear(3, 1)])
    assert len(ml) == 2 and len(list(ml.parameters())) == 4
    assert [n for n, _ in ml.named_parameters()][:2] == ["0.weight", "0.bias"]


def test_buffers_are_in_the_state_dict_but_not_parameters():
    class WithBuffer(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2)
            self.register_buffer("running", np.arange(3, dtype=np.float32))

    m = WithBuffer()
    assert "running" not in dict(m.named_parameters())
    assert list(m.state_dict()) == ["running", "lin.weight", "lin.bias"]  # torch's order
    np.testing.assert_array_equal(m.state_dict()["running"].numpy(), [0, 1, 2])


# ---------------------------------------------------------------------------
# initialisation (as PyTorch)


def test_linear_init_is_pytorch_kaiming_uniform():
    nn.manual_seed(0)
    lin = nn.Linear(400, 300)
    w, b = lin.weight.numpy(), lin.bias.numpy()
    bound = 1 / math.sqrt(400)  # kaiming_uniform(a=sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert w.shape == (300, 400) and w.dtype == np.float32
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.01 * bound
    assert abs(w.mean()) < 0.01 * bound
    assert np.abs(b).max() <= bound and np.abs(b).max() > 0.9 * bound


def test_conv_init_uses_fan_in_of_channels_times_kernel():
    nn.manual_seed(1)
    conv = nn.Conv2d(8, 32, 3)
    bound = 1 / math.sqrt(8 * 9)
    w = conv.weight.numpy()
    assert w.shape == (32, 8, 3, 3)
    assert np.abs(w).max() <= bound and abs(w.std() - bound / math.sqrt(3)) < 0.05 * bound
    assert np.abs(conv.bias.numpy()).max() <= bound


def test_embedding_init_is_standard_normal():
    nn.manual_seed(2)
    w = nn.Embedding(1000, 50).weight.numpy()
    assert abs(w.mean()) < 0.02 and abs(w.std() - 1) < 0.02


def test_manual_seed_makes_initialisation_reproducible():
    nn.manual_seed(7)
    a = [p.numpy() for p in TwoLayer().parameters()]
    nn.manual_seed(7)
    b = [p.numpy() for p in TwoLayer().parameters()]
    c = [p.numpy() for p in TwoLayer().parameters()]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[1], c[1])


def test_float64_layers():
    lin = nn.Linear(3, 2, dtype=np.float64)
    assert lin.weight.dtype == np.float64 and lin.bias.dtype == np.float64
    assert lin(opgraph.tensor(np.ones((1, 3)))).dtype == np.float64


# ---------------------------------------------------------------------------
# layers against NumPy


def test_linear_forward_and_gradcheck():
    lin = nn.Linear(4, 3, dtype=np.float64)
    x = opgraph.tensor(np.random.default_rng(0).standard_normal((5, 4)), requires_grad=True)
    w, b = lin.weight.numpy(), lin.bias.numpy()
    np.testing.assert_allclose(lin(x).numpy(), x.numpy() @ w.T + b, rtol=1e-12)
    assert opgraph.gradcheck(lambda x, w, b: lin(x), [x, lin.weight, lin.bias])
    with pytest.raises(ValueError, match=r"Linear\(4, 3\).*last dim 5"):
        lin(opgraph.ones(2, 5, dtype=np.float64))


def test_linear_without_bias_and_batched_input():
    lin = nn.Linear(3, 2, bias=False)
    assert lin.bias is None and len(list(lin.parameters())) == 1
    x = opgraph.randn(2, 4, 3, seed=0)
    np.testing.assert_allclose(lin(x).numpy(), x.numpy() @ lin.weight.numpy().T, rtol=1e-5)


@pytest.mark.parametrize("stride,padding", [(1, 0), (1, 1), (2, 1)])
def test_conv2d_matches_a_naive_convolution(stride, padding):
    conv = nn.Conv2d(3, 4, 3, stride=stride, padding=padding, dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 6))
    got = conv(opgraph.tensor(x)).numpy()
    want = _naive_conv(x, conv.weight.numpy(), conv.bias.numpy(), stride, padding)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_conv2d_gradcheck():
    conv = nn.Conv2d(2, 2, 3, padding=1, dtype=np.float64)
    x = opgraph.tensor(np.random.default_rng(1).standard_normal((1, 2, 4, 4)), requires_grad=True)
    assert opgraph.gradcheck(lambda x, w, b: conv(x), [x, conv.weight, conv.bias])


def test_conv_and_pool_take_pytorch_style_pairs():
    conv = nn.Conv2d(1, 2, (3, 2), stride=(2, 2), padding=(1, 1), dtype=np.float64)
    assert conv.weight.shape == (2, 1, 3, 2) and (conv.stride, conv.padding) == ((2, 2), (1, 1))
    x = np.random.default_rng(0).standard_normal((1, 1, 6, 5))
    want = _naive_conv(x, conv.weight.numpy(), conv.bias.numpy(), 2, 1)
    np.testing.assert_allclose(conv(opgraph.tensor(x)).numpy(), want, rtol=1e-10, atol=1e-12)
    pool = nn.MaxPool2d((2, 2), stride=[2, 2])
    assert (pool.kernel_size, pool.stride) == ((2, 2), [2, 2])  # kept as given, as torch
    assert pool(opgraph.tensor(x)).shape == (1, 1, 3, 2)
    # non-square strides, paddings and kernels (checked against a brute-force conv elsewhere)
    assert nn.Conv2d(1, 2, 3, stride=(1, 2))(opgraph.tensor(x)).shape == (1, 2, 4, 2)
    assert nn.MaxPool2d((2, 3))(opgraph.tensor(x)).shape == (1, 1, 3, 1)
    with pytest.raises(ValueError, match="Conv2D: padding must be a non-negative int"):
        opgraph.conv2d(opgraph.tensor(x), conv.weight, padding=-1)


def test_maxpool_flatten_embedding():
    x = opgraph.tensor(np.arange(2 * 3 * 4 * 4, dtype=np.float32).reshape(2, 3, 4, 4))
    y = nn.MaxPool2d(2)(x)
    assert y.shape == (2, 3, 2, 2)
    np.testing.assert_array_equal(y.numpy(), x.numpy().reshape(2, 3, 2, 2, 2, 2).max(axis=(3, 5)))
    assert nn.Flatten()(y).shape == (2, 12)
    assert nn.Flatten(0, 1)(y).shape == (6, 2, 2)
    assert nn.Flatten(2)(x).shape == (2, 3, 16)
    emb = nn.Embedding(10, 4)
    idx = opgraph.tensor([[1, 2], [9, 1]])
    out = emb(idx)
    assert out.shape == (2, 2, 4)
    np.testing.assert_array_equal(out.numpy(), emb.weight.numpy()[[[1, 2], [9, 1]]])
    out.sum().backward()
    counts = np.bincount([1, 2, 9, 1], minlength=10)[:, None] * np.ones((1, 4))
    np.testing.assert_array_equal(emb.weight.grad.numpy(), counts)


def test_activation_modules_match_numpy():
    x = np.linspace(-4, 4, 17)
    t = opgraph.tensor(x)
    sig = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(nn.ReLU()(t).numpy(), np.maximum(x, 0), rtol=1e-6)
    np.testing.assert_allclose(nn.Sigmoid()(t).numpy(), sig, rtol=1e-6)
    np.testing.assert_allclose(nn.Tanh()(t).numpy(), np.tanh(x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(nn.SiLU()(t).numpy(), x * sig, rtol=1e-5, atol=1e-7)
    s = nn.Softmax(dim=-1)(opgraph.tensor(x.reshape(1, -1))).numpy()
    np.testing.assert_allclose(s, (np.exp(x) / np.exp(x).sum()).reshape(1, -1), rtol=1e-5)
    ls = nn.LogSoftmax()(opgraph.tensor(x.reshape(1, -1))).numpy()
    np.testing.assert_allclose(ls, np.log(np.exp(x) / np.exp(x).sum()).reshape(1, -1),
                               rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------
# Dropout


def test_dropout_in_training_zeroes_and_rescales():
    x = opgraph.ones(200, 100, requires_grad=True)
    y = nn.Dropout(0.3, seed=0)(x)
    v = y.numpy()
    np.testing.assert_allclose(np.unique(v), [0.0, 1 / 0.7], rtol=1e-6)
    assert abs((v == 0).mean() - 0.3) < 0.01
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), v)  # the gradient is the mask


def test_dropout_is_the_identity_in_eval_mode_and_seedable():
    x = opgraph.randn(50, 50, seed=0)
    d = nn.Dropout(0.5, seed=3)
    a = d(x).numpy()
    assert not np.array_equal(a, d(x).numpy())           # a new mask per call
    np.testing.assert_array_equal(a, nn.Dropout(0.5, seed=3)(x).numpy())  # the seed repeats
    d.eval()
    assert d(x) is x
    with pytest.raises(ValueError, match=r"Dropout: p must be in \[0, 1\], got 1.5"):
        nn.Dropout(1.5)
    assert (nn.Dropout(1.0)(x).numpy() == 0).all()  # p = 1 drops everything, as torch


# ---------------------------------------------------------------------------
# losses


def test_cross_entropy_loss_matches_numpy():
    logits = np.random.default_rng(0).standard_normal((6, 4))
    targets = np.array([0, 3, 1, 1, 2, 0])
    got = nn.CrossEntropyLoss()(opgraph.tensor(logits), opgraph.tensor(targets)).item()
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    assert got == pytest.approx(-logp[np.arange(6), targets].mean(), rel=1e-6)


def test_mse_loss_reductions_and_gradient():
    a = opgraph.tensor([1.0, 2.0, 4.0], requires_grad=True)
    b = np.array([1.0, 0.0, 1.0], dtype=np.float32)
    loss = nn.MSELoss()(a, b)
    assert loss.item() == pytest.approx((0 + 4 + 9) / 3)
    loss.backward()
    np.testing.assert_allclose(a.grad.numpy(), 2 * (a.numpy() - b) / 3, rtol=1e-6)
    assert nn.MSELoss(reduction="sum")(a, b).item() == pytest.approx(13)
    assert nn.MSELoss(reduction="none")(a, b).shape == (3,)
    # a positional string is torch's legacy size_average (truthy: the mean), with its warning
    with pytest.warns(UserWarning, match=r"size_average and reduce args will be deprecated, "
                                         r"please use reduction='mean' instead"):
        assert nn.MSELoss("sum")(a, b).item() == pytest.approx(13 / 3)
    with pytest.warns(UserWarning, match="reduction='sum'"):
        assert nn.MSELoss(False).reduction == "sum"
    with pytest.raises(ValueError, match=r"mse_loss.*\(3,\).*\(2,\)"):
        nn.MSELoss()(a, np.zeros(2, dtype=np.float32))
    with pytest.raises(ValueError, match="MSELoss: reduction must be"):
        nn.MSELoss(reduction="avg")


def test_a_small_mlp_learns_xor():
    nn.manual_seed(0)
    x = opgraph.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = opgraph.tensor([0, 1, 1, 0])
    model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2))
    opt = opgraph.optim.Adam(model.parameters(), lr=0.05)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(200):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
    assert loss.item() < 0.05
    assert list(model(x).numpy().argmax(1)) == [0, 1, 1, 0]


# ---------------------------------------------------------------------------
# state dicts, save and load


def test_state_dict_round_trip():
    a, b = TwoLayer(), TwoLayer()
    x = opgraph.randn(3, 4, seed=1)
    assert not np.allclose(a(x).numpy(), b(x).numpy())
    state = a.state_dict()
    assert list(state) == ["scale", "fc1.weight", "fc1.bias", "fc2.weight"]
    assert all(not t.requires_grad for t in state.values())
    assert b.load_state_dict(state) == ([], [])
    np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())
    # a copy: changing a afterwards leaves b alone
    a.fc1.weight.data = a.fc1.weight.data * 0
    assert np.abs(b.fc1.weight.numpy()).sum() > 0


def test_load_state_dict_of_wrong_shapes_changes_nothing():
    m = TwoLayer()
    before = {k: v.numpy().copy() for k, v in m.state_dict().items()}
    bad = {k: v.numpy() for k, v in TwoLayer().state_dict().items()}
    bad["fc1.bias"] = np.zeros(9, dtype=np.float32)       # wrong shape, after a good entry
    with pytest.raises(ValueError, match=r"fc1.bias: expected shape \(8,\), got \(9,\).*nothing "
                                         r"was loaded"):
        m.load_state_dict(bad)
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k])


def test_load_state_dict_missing_and_unexpected_keys():
    m = TwoLayer()
    state = m.state_dict()
    del state["scale"]
    state["extra"] = opgraph.ones(2)
    with pytest.raises(KeyError, match=r"missing keys \['scale'\].*unexpected keys \['extra'\]"):
        m.load_state_dict(state)
    assert m.load_state_dict(state, strict=False) == (["scale"], ["extra"])


def test_save_and_load_npz_without_pickle(tmp_path):
    nn.manual_seed(3)
    a = TwoLayer()
    path = tmp_path / "weights.bin"   # the file is written exactly there
    opgraph.save(a, path)
    assert path.exists() and not (tmp_path / "weights.bin.npz").exists()
    with np.load(path, allow_pickle=False) as f:
        assert sorted(f.files) == sorted(dict(a.named_parameters()))
    loaded = opgraph.load(path)
    assert list(loaded) == list(a.state_dict())
    assert all(isinstance(v, opgraph.Tensor) for v in loaded.values())
    b = TwoLayer()
    b.load_state_dict(loaded)
    x = opgraph.randn(2, 4, seed=0)
    np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())
    # a state dict (of arrays) saves too, and float64 survives
    opgraph.save({"w": np.arange(3.0)}, tmp_path / "s.npz")
    assert opgraph.load(tmp_path / "s.npz")["w"].dtype == np.float64


def test_save_rejects_objects_and_load_rejects_other_files(tmp_path):
    with pytest.raises(TypeError, match="only numeric arrays"):
        opgraph.save({"w": np.array([{"a": 1}], dtype=object)}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match="Module or a dict"):
        opgraph.save([1, 2], tmp_path / "x.npz")
    np.save(tmp_path / "one.npy", np.zeros(3))
    with pytest.raises(ValueError, match="single array"):
        opgraph.load(tmp_path / "one.npy")
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(ValueError, match="not an opgraph .npz"):
        opgraph.load(tmp_path / "text.npz")


def test_any_key_name_saves_and_bad_entries_are_named(tmp_path):
    # numpy.savez takes its arrays as keyword arguments: "file" and "allow_pickle" collide
    state = {"file": np.ones(2), "allow_pickle": np.arange(3), "a.b": np.zeros((1, 2))}
    opgraph.save(state, tmp_path / "k.npz")
    loaded = opgraph.load(tmp_path / "k.npz")
    assert list(loaded) == list(state)
    for k in state:
        np.testing.assert_array_equal(loaded[k].numpy(), state[k])
    np.savez(tmp_path / "obj.npz", w=np.array([{}], dtype=object))
    with pytest.raises(ValueError, match="entry 'w' is not a plain numeric array"):
        opgraph.load(tmp_path / "obj.npz")
    with pytest.raises(FileNotFoundError, match="no such file"):
        opgraph.load(tmp_path / "missing.npz")


def test_loading_a_file_of_the_wrong_model_raises_and_changes_nothing(tmp_path):
    opgraph.save(nn.Sequential(nn.Linear(4, 7)), tmp_path / "w.npz")
    m = nn.Sequential(nn.Linear(4, 8))
    before = m[0].weight.numpy().copy()
    with pytest.raises(ValueError, match=r"0.weight: expected shape \(8, 4\), got \(7, 4\)"):
        m.load_state_dict(opgraph.load(tmp_path / "w.npz"))
    np.testing.assert_array_equal(m[0].weight.numpy(), before)


# ---------------------------------------------------------------------------
# backends


def test_modules_are_created_on_the_default_backend_and_move_with_to(backend):
    nn.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(8, 3))
    x = np.random.default_rng(0).standard_normal((2, 1, 4, 4)).astype(np.float32)
    want = model(opgraph.tensor(x)).numpy()
    params = list(model.parameters())
    assert model.to(backend) is model
    assert [id(p) for p in model.parameters()] == [id(p) for p in params]
    assert all(p.backend is backend and backend.is_array(p.data) for p in params)
    out = model(opgraph.tensor(x, backend=backend))
    assert out.backend is backend
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-4, atol=1e-5)
    out.sum().backward()
    assert all(p.grad.backend is backend for p in params)
    model.to("numpy")
    assert all(p.backend.name == "numpy" for p in params)


def test_layers_follow_set_default_backend(backend):
    old = opgraph.get_default_backend()
    try:
        opgraph.set_default_backend(backend)
        lin = nn.Linear(3, 2)
        assert lin.weight.backend is backend and lin.bias.backend is backend
        assert nn.Embedding(4, 2).weight.backend is backend
    finally:
        opgraph.set_default_backend(old)
