"""Recurrent cells: the elementwise parts of the LSTM and GRU cells as one op each (one fused
kernel forward, one backward); the matmuls around them are ordinary MatMul ops."""
from opgraph.operation import MultiOutputOperation, Operation
from opgraph.tape import is_recording

from .shape import Cat, Chunk


class LSTMCell(MultiOutputOperation):
    """For gates (N, 4H) = x·W_ihᵀ + b_ih + h·W_hhᵀ + b_hh in torch's order (i, f, g, o) and
    the cell state c (N, H): i = σ(a_i), f = σ(a_f), g = tanh(a_g), o = σ(a_o),
    c' = f·c + i·g, h' = o·tanh(c'); outputs (h', c').
    With d = dc' + dh'·o·(1 - tanh²c'): da_i = d·g·i(1-i), da_f = d·c·f(1-f),
    da_g = d·i·(1-g²), da_o = dh'·tanh(c')·o(1-o), dc = d·f  (one fused kernel; a graph of
    differentiable ops under create_graph)"""
    saves = (0, 1, "c_new")

    def forward(self, gates, c):
        n, four_h = gates.shape
        if four_h % 4 or tuple(c.shape) != (n, four_h // 4):
            raise ValueError(f"{self.name}: gates of shape {tuple(gates.shape)} and cell state "
                             f"of shape {tuple(c.shape)} do not fit (expected (N, 4H) and "
                             f"(N, H))")
        h, c_new = self.backend.lstm_cell(gates, c)
        self.c_new = c_new
        return h, c_new

    def backward_multi(self, grads):
        dh, dc_new = grads
        gates, c = self.inputs
        if dh is None and dc_new is None:
            return None, None
        b = self.backend
        zeros = b.zeros(tuple(c.shape), c.dtype)
        dh = self.constant(zeros) if dh is None else dh
        dc_new = self.constant(zeros) if dc_new is None else dc_new
        if is_recording():  # create_graph: the backward from differentiable ops
            a_i, a_f, a_g, a_o = Chunk(4, 1)(gates)
            i, f, g, o = a_i.sigmoid(), a_f.sigmoid(), a_g.tanh(), a_o.sigmoid()
            t = (f * c + i * g).tanh()
            d = dc_new + dh * o * (1 - t * t)
            dgates = Cat(1)(d * g * i * (1 - i), d * c * f * (1 - f), d * i * (1 - g * g),
                            dh * t * o * (1 - o))
            return dgates, d * f
        dgates, dc = b.lstm_cell_grad(gates.data, c.data, self.c_new, dh.data, dc_new.data)
        return self.constant(dgates), self.constant(dc)


class GRUCell(Operation):
    """For gx = x·W_ihᵀ + b_ih and gh = h·W_hhᵀ + b_hh (N, 3H) in torch's order (r, z, n)
    and the state h (N, H): r = σ(gx_r + gh_r), z = σ(gx_z + gh_z),
    n = tanh(gx_n + r·gh_n), h' = n + z·(h - n).
    With a = dh'·(1 - z)·(1 - n²): dgx = (a_r, a_z, a), dgh = (a_r, a_z, a·r),
    dh = dh'·z, where a_r = a·gh_n·r(1-r), a_z = dh'·(h - n)·z(1-z) (one fused kernel;
    a graph of differentiable ops under create_graph)"""
    saves = (0, 1, 2)

    def forward(self, gx, gh, h):
        n, three_h = gx.shape
        if three_h % 3 or tuple(gh.shape) != tuple(gx.shape) or tuple(h.shape) != (
                n, three_h // 3):
            raise ValueError(f"{self.name}: gx {tuple(gx.shape)}, gh {tuple(gh.shape)} and h "
                             f"{tuple(h.shape)} do not fit (expected (N, 3H), (N, 3H), (N, H))")
        return self.backend.gru_cell(gx, gh, h)

    def backward(self, grad):
        gx, gh, h = self.inputs
        if is_recording():  # create_graph: the backward from differentiable ops
            x_r, x_z, x_n = Chunk(3, 1)(gx)
            h_r, h_z, h_n = Chunk(3, 1)(gh)
            r, z = (x_r + h_r).sigmoid(), (x_z + h_z).sigmoid()
            n = (x_n + r * h_n).tanh()
            a = grad * (1 - z) * (1 - n * n)
            a_r = a * h_n * r * (1 - r)
            a_z = grad * (h - n) * z * (1 - z)
            return Cat(1)(a_r, a_z, a), Cat(1)(a_r, a_z, a * r), grad * z
        dgx, dgh, dh = self.backend.gru_cell_grad(gx.data, gh.data, h.data, grad.data)
        return self.constant(dgx), self.constant(dgh), self.constant(dh)
