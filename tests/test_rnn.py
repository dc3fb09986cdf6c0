"""RNN, LSTM, GRU and their cells against NumPy transcriptions of torch's equations; the fused
LSTM cell op gradchecked on every backend; torch's parameter names and shapes."""
import numpy as np
import pytest

import opgraph as og
from opgraph import nn, ops


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _step(mode, x, h, c, w_ih, w_hh, b_ih, b_hh):
    gx, gh = x @ w_ih.T + b_ih, h @ w_hh.T + b_hh
    if mode == "LSTM":
        i, f, g, o = np.split(gx + gh, 4, axis=1)
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        return _sigmoid(o) * np.tanh(c), c
    if mode == "GRU":
        xr, xz, xn = np.split(gx, 3, axis=1)
        hr, hz, hn = np.split(gh, 3, axis=1)
        r, z = _sigmoid(xr + hr), _sigmoid(xz + hz)
        n = np.tanh(xn + r * hn)
        return (1 - z) * n + z * h, None
    return np.tanh(gx + gh), None


def _reference(module, x, h0, c0):
    """torch's recurrence for (L, N, F) input, every layer and direction."""
    mode = {"RNN": "RNN", "LSTM": "LSTM", "GRU": "GRU"}[type(module).__name__]
    sd = {k: v.numpy() for k, v in module.state_dict().items()}
    dirs = 2 if module.bidirectional else 1
    layer_in, hs, cs = x, [], []
    for layer in range(module.num_layers):
        outs = []
        for d in range(dirs):
            sfx = f"l{layer}" + ("_reverse" if d else "")
            idx = layer * dirs + d
            h, c = h0[idx], c0[idx] if c0 is not None else None
            seq = [None] * len(x)
            for t in (range(len(x)) if d == 0 else reversed(range(len(x)))):
                h, c = _step(mode, layer_in[t], h, c, sd[f"weight_ih_{sfx}"],
                             sd[f"weight_hh_{sfx}"], sd[f"bias_ih_{sfx}"], sd[f"bias_hh_{sfx}"])
                seq[t] = h
            outs.append(np.stack(seq))
            hs.append(h)
            cs.append(c)
        layer_in = np.concatenate(outs, axis=2)
    return layer_in, np.stack(hs), (np.stack(cs) if c0 is not None else None)


@pytest.mark.parametrize("cls", [nn.RNN, nn.LSTM, nn.GRU])
@pytest.mark.parametrize("kwargs", [dict(), dict(num_layers=2, batch_first=True),
                                    dict(bidirectional=True, num_layers=2)])
def test_recurrent_layers_match_numpy(cls, kwargs):
    rng = np.random.default_rng(0)
    m = cls(3, 4, dtype=np.float64, **kwargs)
    dirs = 2 if m.bidirectional else 1
    x = rng.standard_normal((5, 2, 3))
    h0 = rng.standard_normal((dirs * m.num_layers, 2, 4))
    c0 = rng.standard_normal(h0.shape) if cls is nn.LSTM else None
    inp = og.tensor(x.transpose(1, 0, 2) if m.batch_first else x)
    state = (og.tensor(h0), og.tensor(c0)) if cls is nn.LSTM else og.tensor(h0)
    out, hn = m(inp, state)
    want_out, want_h, want_c = _reference(m, x, h0, c0)
    got = out.numpy().transpose(1, 0, 2) if m.batch_first else out.numpy()
    np.testing.assert_allclose(got, want_out, rtol=1e-10, atol=1e-12)
    if cls is nn.LSTM:
        hn, cn = hn
        np.testing.assert_allclose(cn.numpy(), want_c, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(hn.numpy(), want_h, rtol=1e-10, atol=1e-12)
    assert out.shape[-1] == 4 * dirs


def test_parameter_names_shapes_and_initialisation_follow_torch():
    m = nn.LSTM(3, 5, num_layers=2, bidirectional=True)
    names = list(m.state_dict())
    assert names[:8] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
                         "weight_ih_l0_reverse", "weight_hh_l0_reverse", "bias_ih_l0_reverse",
                         "bias_hh_l0_reverse"]
    assert len(names) == 16
    assert m.weight_ih_l0.shape == (20, 3) and m.weight_ih_l1.shape == (20, 10)
    assert m.weight_hh_l1_reverse.shape == (20, 5) and m.bias_hh_l0.shape == (20,)
    for p in m.parameters():
        assert np.abs(p.numpy()).max() <= 1 / np.sqrt(5)
    assert nn.GRU(3, 5).weight_ih_l0.shape == (15, 3)
    assert list(nn.RNN(3, 5, bias=False).state_dict()) == ["weight_ih_l0", "weight_hh_l0"]


def test_default_state_unbatched_input_and_cells():
    rng = np.random.default_rng(1)
    lstm = nn.LSTM(2, 3, dtype=np.float64)
    x = rng.standard_normal((4, 2))
    out, (h, c) = lstm(og.tensor(x))  # unbatched (L, H_in), zero initial state
    want, want_h, want_c = _reference(lstm, x[:, None], np.zeros((1, 1, 3)),
                                      np.zeros((1, 1, 3)))
    assert out.shape == (4, 3) and h.shape == (1, 3)
    np.testing.assert_allclose(out.numpy(), want[:, 0], rtol=1e-10)
    cell = nn.LSTMCell(2, 3, dtype=np.float64)
    cell.load_state_dict({k.replace("_l0", ""): v for k, v in lstm.state_dict().items()})
    hc = None
    for t in range(4):
        hc = cell(og.tensor(x[t:t + 1]), hc)
    np.testing.assert_allclose(hc[0].numpy()[0], want_h[0, 0], rtol=1e-10)
    np.testing.assert_allclose(hc[1].numpy()[0], want_c[0, 0], rtol=1e-10)
    gru, gcell = nn.GRU(2, 3, dtype=np.float64), nn.GRUCell(2, 3, dtype=np.float64)
    gcell.load_state_dict({k.replace("_l0", ""): v for k, v in gru.state_dict().items()})
    h = gcell(og.tensor(x[0]))
    np.testing.assert_allclose(h.numpy(), gru(og.tensor(x[:1]))[0].numpy()[0], rtol=1e-10)
    rcell = nn.RNNCell(2, 3, nonlinearity="relu")
    assert (rcell(og.tensor(x[:2].astype(np.float32))).numpy() >= 0).all()


def test_an_empty_batch_gives_empty_outputs():
    out, (h, c) = nn.LSTM(3, 4, num_layers=2)(og.zeros(5, 0, 3))
    assert out.shape == (5, 0, 4) and h.shape == c.shape == (2, 0, 4)


def test_dropout_between_layers_only_in_training():
    m = nn.GRU(2, 3, num_layers=2, dropout=0.5)
    x = og.randn(4, 1, 2, seed=0)
    m.eval()
    a, b = m(x)[0].numpy(), m(x)[0].numpy()
    np.testing.assert_array_equal(a, b)
    m.train()
    og.manual_seed(0)
    c = m(x)[0].numpy()
    assert not np.allclose(a, c)


def test_gradients_flow_through_time(backend):
    m = nn.LSTM(2, 2, batch_first=True, dtype=np.float64, backend=backend)
    x = og.tensor(np.random.default_rng(2).standard_normal((2, 3, 2)), requires_grad=True,
                  backend=backend)

    def loss(x, w):
        out, (h, c) = m(x)
        return (out * out).sum() + (c * w).sum()

    w = og.tensor(np.ones((1, 2, 2)), requires_grad=True, backend=backend)
    assert og.gradcheck(loss, [x, w])
    assert og.gradcheck(lambda w_hh: nn.functional.mse_loss(m(x)[0], x.detach() * 0),
                        [m.weight_hh_l0])


@pytest.mark.parametrize("which", ["both", "h", "c"])
def test_lstm_cell_op_gradcheck(backend, which):
    rng = np.random.default_rng(3)
    gates = og.tensor(rng.standard_normal((2, 8)) * 2, requires_grad=True, backend=backend)
    c = og.tensor(rng.standard_normal((2, 2)), requires_grad=True, backend=backend)
    pick = {"both": lambda hc: hc, "h": lambda hc: hc[0], "c": lambda hc: hc[1]}[which]
    assert og.gradcheck(lambda g, c: pick(ops.LSTMCell()(g, c)), [gates, c])


def test_gru_cell_op_gradcheck(backend):
    rng = np.random.default_rng(6)
    gx, gh, h = (og.tensor(rng.standard_normal(s), requires_grad=True, backend=backend)
                 for s in [(2, 6), (2, 6), (2, 2)])
    assert og.gradcheck(lambda a, b, c: ops.GRUCell()(a, b, c), [gx, gh, h])


def test_gru_cell_op_second_order():
    rng = np.random.default_rng(7)
    args = [og.tensor(rng.standard_normal(s), requires_grad=True) for s in [(2, 6), (2, 6), (2, 2)]]
    assert og.gradgradcheck(lambda a, b, c: ops.GRUCell()(a, b, c), args)


def test_lstm_cell_op_second_order():
    rng = np.random.default_rng(4)
    gates = og.tensor(rng.standard_normal((2, 8)), requires_grad=True)
    c = og.tensor(rng.standard_normal((2, 2)), requires_grad=True)
    assert og.gradgradcheck(lambda g, c: ops.LSTMCell()(g, c), [gates, c])


@pytest.mark.parametrize("call, error, match", [
    (lambda: nn.LSTM(0, 3), ValueError, r"LSTM: input_size must be positive, got 0"),
    (lambda: nn.GRU(2, -1), ValueError, r"GRU: hidden_size must be positive, got -1"),
    (lambda: nn.RNN(2, 3, num_layers=0), ValueError, r"RNN: num_layers must be positive"),
    (lambda: nn.RNN(2, 3, nonlinearity="sigmoid"), ValueError, r"RNN: nonlinearity must be"),
    (lambda: nn.LSTM(2, 3, dropout=1.5), ValueError, r"LSTM: dropout must be in \[0, 1\]"),
    (lambda: nn.LSTM(2, 3)(og.zeros(4, 1, 5)), ValueError,
     r"LSTM: input of shape \(4, 1, 5\) has 5 features, expected input_size=2"),
    (lambda: nn.GRU(2, 3)(og.zeros(4, 2, 2), og.zeros(1, 1, 3)), ValueError,
     r"GRU: expected hx of shape \(1, 2, 3\), got \(1, 1, 3\)"),
    (lambda: nn.LSTM(2, 3)(og.zeros(4, 2, 2), og.zeros(1, 2, 3)), TypeError,
     r"LSTM: hx must be a tuple \(h_0, c_0\)"),
    (lambda: nn.LSTM(2, 3)(og.zeros(2)), ValueError, r"LSTM: expected a 2-D \(unbatched\) or 3-D"),
    (lambda: nn.LSTM(3, 3)(og.tensor([[[1, 2, 3]]])), TypeError,
     r"LSTM: input must be a floating-point tensor, got dtype int64 \(shape \(1, 1, 3\)\)"),
    (lambda: nn.GRUCell(3, 3)(og.tensor([1, 2, 3])), TypeError,
     r"GRUCell: input must be a floating-point tensor, got dtype int64"),
    (lambda: nn.GRU(3, 4)(og.zeros(0, 2, 3)), ValueError,
     r"GRU: expected a sequence length larger than 0, got input of shape \(0, 2, 3\)"),
    (lambda: ops.LSTMCell()(og.zeros(2, 7), og.zeros(2, 2)), ValueError,
     r"LSTMCell: gates of shape \(2, 7\) and cell state of shape \(2, 2\) do not fit"),
    (lambda: ops.GRUCell()(og.zeros(2, 6), og.zeros(2, 6), og.zeros(2, 3)), ValueError,
     r"GRUCell: gx \(2, 6\), gh \(2, 6\) and h \(2, 3\) do not fit"),
])
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()
