"""Recurrent layers, as torch.nn's: RNN, LSTM, GRU (multi-layer, batch_first, bidirectional,
dropout between layers) and the single-step RNNCell, LSTMCell, GRUCell.

Parameters have torch's names, shapes, gate order and initialisation, so a torch
state_dict loads as it is: for layer k (and `_reverse` for the backward direction)
weight_ih_l{k} (G·H, input), weight_hh_l{k} (G·H, H), bias_ih_l{k}, bias_hh_l{k} (G·H), with
G = 1 (RNN), 4 (LSTM: gates i, f, g, o), 3 (GRU: r, z, n), all U(-1/√H, 1/√H).

The input projection of a whole sequence is one matmul; each time step is a matmul with
weight_hh and the cell (for the LSTM and the GRU one fused op each, ops.LSTMCell and
ops.GRUCell).
"""
import math

from opgraph.ops import recurrent as _recurrent
from opgraph.ops.shape import Cat as _Cat
from opgraph.ops.shape import Chunk as _Chunk

from .. import _checks
from .. import functions as _fn
from ..tensor import Tensor
from . import functional as F
from . import init
from .modules import Module, Parameter, _backend, _dtype

__all__ = ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"]

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _uniform(shape, hidden, dtype, backend):
    return Parameter(init.uniform(shape, 1.0 / math.sqrt(hidden), dtype), backend=backend)


def _steps(x):
    """(T, N, F) as T tensors (N, F), by one Chunk op (its backward is one Cat)."""
    t = x.shape[0]
    if t == 1:
        return [x.reshape(x.shape[1:])]
    return [piece.reshape(piece.shape[1:]) for piece in _Chunk(t, 0)(x)]


def _stack(hs):
    """T tensors (N, H) as (T, N, H), by one Cat op."""
    if len(hs) == 1:
        return hs[0].reshape((1,) + hs[0].shape)
    return _Cat(0)(*[h.reshape((1,) + h.shape) for h in hs])


def _cell_step(mode, gx, h, c, w_hh, b_hh):
    """One time step: gx is the input projection (with b_ih, and b_hh except for the GRU)."""
    gh = _fn.matmul(h, w_hh.T)
    if mode == "LSTM":
        return _recurrent.LSTMCell()(gx + gh, c)
    if mode == "GRU":
        if b_hh is not None:
            gh = gh + b_hh
        return _recurrent.GRUCell()(gx, gh, h), None
    pre = gx + gh
    return (pre.tanh() if mode == "RNN_TANH" else pre.relu()), None



def _float_input(name, input):
    # as torch: a recurrent layer takes float input (an integer sequence is embedded first)
    if input.dtype.kind != "f":
        raise TypeError(f"{name}: input must be a floating-point tensor, got dtype {input.dtype} "
                        f"(shape {tuple(input.shape)}); convert with .float() or use an "
                        "nn.Embedding for token ids")

class RNNBase(Module):
    """The shared machinery of RNN, LSTM and GRU (see the module docstring)."""

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, proj_size=0, device=None,
                 dtype=None, backend=None):
        super().__init__()
        name = type(self).__name__
        self.mode = mode
        self.input_size = _checks.size(name, "input_size", input_size)
        self.hidden_size = _checks.size(name, "hidden_size", hidden_size)
        self.num_layers = _checks.size(name, "num_layers", num_layers)
        self.dropout = _checks.number(name, "dropout", dropout, 0.0, 1.0)
        if proj_size:
            raise NotImplementedError(f"{name}: proj_size is not supported (only 0)")
        self.proj_size = 0
        self.bias, self.batch_first = bool(bias), bool(batch_first)
        self.bidirectional = bool(bidirectional)
        backend, dtype = _backend(backend if backend is not None else device), _dtype(dtype)
        gates = _GATES[mode] * self.hidden_size
        directions = 2 if self.bidirectional else 1
        self._flat_names = []
        for layer in range(self.num_layers):
            width = self.input_size if layer == 0 else self.hidden_size * directions
            for suffix in ("", "_reverse")[:directions]:
                names = [f"weight_ih_l{layer}{suffix}", f"weight_hh_l{layer}{suffix}"]
                shapes = [(gates, width), (gates, self.hidden_size)]
                if self.bias:
                    names += [f"bias_ih_l{layer}{suffix}", f"bias_hh_l{layer}{suffix}"]
                    shapes += [(gates,), (gates,)]
                for n, shape in zip(names, shapes):
                    setattr(self, n, _uniform(shape, self.hidden_size, dtype, backend))
                self._flat_names.append(names)

    @property
    def all_weights(self):
        return [[getattr(self, n) for n in names] for names in self._flat_names]

    def _weights(self, index):
        names = self._flat_names[index]
        w_ih, w_hh = getattr(self, names[0]), getattr(self, names[1])
        b_ih, b_hh = (getattr(self, names[2]), getattr(self, names[3])) if self.bias \
            else (None, None)
        return w_ih, w_hh, b_ih, b_hh

    def _check_hidden(self, what, h, expected):
        if not isinstance(h, Tensor):
            raise TypeError(f"{type(self).__name__}: {what} must be a Tensor, got "
                            f"{type(h).__name__}")
        if tuple(h.shape) != expected:
            raise ValueError(f"{type(self).__name__}: expected {what} of shape {expected}, got "
                             f"{tuple(h.shape)}")

    def forward(self, input, hx=None):
        name = type(self).__name__
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}: expects a Tensor input, got {type(input).__name__}")
        if input.ndim not in (2, 3):
            raise ValueError(f"{name}: expected a 2-D (unbatched) or 3-D input, got shape "
                             f"{tuple(input.shape)}")
        _float_input(name, input)
        batched = input.ndim == 3
        x = input if batched else input.unsqueeze(1)
        if batched and self.batch_first:
            x = x.transpose(0, 1)
        if x.shape[2] != self.input_size:
            raise ValueError(f"{name}: input of shape {tuple(input.shape)} has {x.shape[2]} "
                             f"features, expected input_size={self.input_size}")
        steps, n = x.shape[0], x.shape[1]
        if steps == 0:
            raise ValueError(f"{name}: expected a sequence length larger than 0, got input of "
                             f"shape {tuple(input.shape)}")
        directions = 2 if self.bidirectional else 1
        expected = (self.num_layers * directions, n, self.hidden_size)
        h0, c0 = self._initial_state(hx, batched, expected, x)
        layer_input = x
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outputs = []
            for d in range(directions):
                index = layer * directions + d
                w_ih, w_hh, b_ih, b_hh = self._weights(index)
                flat = layer_input.reshape(steps * n, layer_input.shape[2])
                proj = _fn.matmul(flat, w_ih.T)
                if b_ih is not None:
                    # for LSTM and RNN both biases go in once here; the GRU keeps b_hh inside
                    proj = proj + (b_ih + b_hh if self.mode != "GRU" else b_ih)
                gxs = _steps(proj.reshape(steps, n, proj.shape[1]))
                h, c = h0[index], (c0[index] if c0 is not None else None)
                hs = [None] * steps
                order = range(steps) if d == 0 else range(steps - 1, -1, -1)
                for t in order:
                    h, c = _cell_step(self.mode, gxs[t], h, c, w_hh, b_hh)
                    hs[t] = h
                outputs.append(_stack(hs))
                h_n.append(h)
                c_n.append(c)
            layer_input = outputs[0] if directions == 1 else _fn.cat(outputs, 2)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout)
        output = layer_input
        if batched and self.batch_first:
            output = output.transpose(0, 1)
        h_n = _fn.stack(h_n, 0)
        if not batched:
            output, h_n = output.squeeze(1), h_n.squeeze(1)
        if self.mode == "LSTM":
            c_n = _fn.stack(c_n, 0)
            return output, (h_n, c_n if batched else c_n.squeeze(1))
        return output, h_n

    def _initial_state(self, hx, batched, expected, x):
        """The initial h (and c) of every layer and direction, as lists of (N, H)."""
        zeros = Tensor._make(x.backend.zeros(expected, x.dtype), x.backend)
        if self.mode == "LSTM":
            if hx is None:
                h, c = zeros, zeros
            else:
                if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                    raise TypeError("LSTM: hx must be a tuple (h_0, c_0)")
                h, c = hx
                if not batched:
                    h, c = h.unsqueeze(1) if isinstance(h, Tensor) else h, \
                        c.unsqueeze(1) if isinstance(c, Tensor) else c
                self._check_hidden("h_0", h, expected)
                self._check_hidden("c_0", c, expected)
            return _layers(h), _layers(c)
        if hx is None:
            return _layers(zeros), None
        h = hx.unsqueeze(1) if not batched and isinstance(hx, Tensor) else hx
        self._check_hidden("hx", h, expected)
        return _layers(h), None

    def extra_repr(self):
        text = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        if not self.bias:
            text += ", bias=False"
        if self.batch_first:
            text += ", batch_first=True"
        if self.dropout:
            text += f", dropout={self.dropout}"
        if self.bidirectional:
            text += ", bidirectional=True"
        return text


def _layers(h):
    """(D·L, N, H) as D·L tensors (N, H)."""
    if h.shape[0] == 1:
        return [h.reshape(h.shape[1:])]
    return [piece.reshape(piece.shape[1:]) for piece in _Chunk(h.shape[0], 0)(h)]


class RNN(RNNBase):
    """Elman RNN: h_t = tanh(x_t·W_ihᵀ + b_ih + h_{t-1}·W_hhᵀ + b_hh) (nonlinearity 'tanh'
    or 'relu'). Returns (output, h_n): output (L, N, D·H) (batch_first: (N, L, D·H)) and
    h_n (D·num_layers, N, H)."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, device=None, dtype=None,
                 backend=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got "
                             f"{nonlinearity!r}")
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size,
                         hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device=device, dtype=dtype, backend=backend)
        self.nonlinearity = nonlinearity


class LSTM(RNNBase):
    """Long short-term memory: gates i, f, g, o = σ, σ, tanh, σ of
    x_t·W_ihᵀ + b_ih + h_{t-1}·W_hhᵀ + b_hh; c_t = f·c_{t-1} + i·g, h_t = o·tanh(c_t).
    Returns (output, (h_n, c_n))."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None,
                 backend=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, proj_size, device, dtype, backend)


class GRU(RNNBase):
    """Gated recurrent unit: r = σ(W_ir x + b_ir + W_hr h + b_hr), z likewise,
    n = tanh(W_in x + b_in + r·(W_hn h + b_hn)), h' = (1 - z)·n + z·h. Returns
    (output, h_n)."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, device=None, dtype=None, backend=None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, device=device, dtype=dtype, backend=backend)


class _CellBase(Module):
    mode = None

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None,
                 backend=None, mode=None):
        super().__init__()
        if mode is not None:
            self.mode = mode
        name = type(self).__name__
        self.input_size = _checks.size(name, "input_size", input_size)
        self.hidden_size = _checks.size(name, "hidden_size", hidden_size)
        self.bias = bool(bias)
        backend, dtype = _backend(backend if backend is not None else device), _dtype(dtype)
        gates = _GATES[self.mode] * self.hidden_size
        self.weight_ih = _uniform((gates, self.input_size), self.hidden_size, dtype, backend)
        self.weight_hh = _uniform((gates, self.hidden_size), self.hidden_size, dtype, backend)
        if self.bias:
            self.bias_ih = _uniform((gates,), self.hidden_size, dtype, backend)
            self.bias_hh = _uniform((gates,), self.hidden_size, dtype, backend)
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)

    def _prepare(self, input, hx):
        name = type(self).__name__
        if not isinstance(input, Tensor) or input.ndim not in (1, 2):
            raise ValueError(f"{name}: expected a 1-D (unbatched) or 2-D input, got "
                             f"{getattr(input, 'shape', type(input).__name__)}")
        if input.shape[-1] != self.input_size:
            raise ValueError(f"{name}: input of shape {tuple(input.shape)} has "
                             f"{input.shape[-1]} features, expected {self.input_size}")
        _float_input(name, input)
        batched = input.ndim == 2
        x = input if batched else input.unsqueeze(0)
        gx = _fn.matmul(x, self.weight_ih.T)
        if self.bias_ih is not None:
            gx = gx + (self.bias_ih + self.bias_hh if self.mode != "GRU" else self.bias_ih)
        shape = (x.shape[0], self.hidden_size)
        zeros = Tensor._make(x.backend.zeros(shape, x.dtype), x.backend)

        def state(h, what):
            if h is None:
                return zeros
            h = h if batched else h.unsqueeze(0)
            if tuple(h.shape) != shape:
                raise ValueError(f"{name}: expected {what} of shape {shape}, got "
                                 f"{tuple(h.shape)}")
            return h
        return batched, gx, state

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")


class RNNCell(_CellBase):
    """One step of RNN: h' = tanh (or relu) of x·W_ihᵀ + b_ih + h·W_hhᵀ + b_hh."""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None,
                 dtype=None, backend=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: nonlinearity must be 'tanh' or 'relu', got "
                             f"{nonlinearity!r}")
        super().__init__(input_size, hidden_size, bias, device, dtype, backend,
                         mode="RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU")
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        batched, gx, state = self._prepare(input, hx)
        h, _ = _cell_step(self.mode, gx, state(hx, "hx"), None, self.weight_hh, None)
        return h if batched else h.squeeze(0)


class LSTMCell(_CellBase):
    """One step of LSTM: (h', c') from x and (h, c) (zeros when hx is None)."""
    mode = "LSTM"

    def forward(self, input, hx=None):
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise TypeError("LSTMCell: hx must be a tuple (h, c)")
        batched, gx, state = self._prepare(input, hx)
        h, c = (None, None) if hx is None else hx
        h, c = _cell_step("LSTM", gx, state(h, "h"), state(c, "c"), self.weight_hh, None)
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))


class GRUCell(_CellBase):
    """One step of GRU: h' from x and h (zeros when hx is None)."""
    mode = "GRU"

    def forward(self, input, hx=None):
        batched, gx, state = self._prepare(input, hx)
        h, _ = _cell_step("GRU", gx, state(hx, "hx"), None, self.weight_hh, self.bias_hh)
        return h if batched else h.squeeze(0)
