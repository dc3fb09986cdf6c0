"""Matrix products."""
from opgraph.operation import Operation
from opgraph.tape import is_recording

from .elementwise import crossed_saves
from .shape import Transpose, broadcast_shapes, sum_to_shape


def _swap_last(t):
    axes = list(range(t.ndim))
    axes[-1], axes[-2] = axes[-2], axes[-1]
    return Transpose(axes)(t)


class MatMul(Operation):
    """C = A @ B for A (n, k), B (k, m);  dA = dC @ Bᵀ, dB = Aᵀ @ dC"""
    promote = True
    saves = property(crossed_saves)

    def forward(self, a, b):
        if len(a.shape) != 2 or len(b.shape) != 2:
            raise ValueError(f"{self.name}: expects 2-D tensors, got shapes {tuple(a.shape)} and "
                             f"{tuple(b.shape)} (use BatchMatMul / opgraph.matmul for batches)")
        if a.shape[1] != b.shape[0]:
            raise ValueError(f"{self.name}: shapes {tuple(a.shape)} and {tuple(b.shape)} are not "
                             f"aligned: {a.shape[1]} (dim 1) != {b.shape[0]} (dim 0)")
        return self.backend.matmul(a, b)

    def backward(self, grad):
        a, b = self.inputs  # (an input that needs no gradient gets None: not computed)
        if is_recording():  # create_graph: products of ops, differentiable again
            return (grad @ b.T if a.requires_grad else None,
                    a.T @ grad if b.requires_grad else None)
        # first order: the two products straight on the backend, without the four ops
        # (two transposes, two products) that would only be thrown away
        bk, g = self.backend, grad.data
        return (self.constant(bk.matmul(g, bk.transpose(b.data, (1, 0))))
                if a.requires_grad else None,
                self.constant(bk.matmul(bk.transpose(a.data, (1, 0)), g))
                if b.requires_grad else None)


class BatchMatMul(Operation):
    """C[..., :, :] = A[..., :, :] @ B[..., :, :] with broadcast batch dims;
    dA = sum_to_shape(dC @ Bᵀ), dB = sum_to_shape(Aᵀ @ dC) (ᵀ swaps the last two axes)"""
    promote = True
    saves = property(crossed_saves)

    def forward(self, a, b):
        if len(a.shape) < 2 or len(b.shape) < 2:
            raise ValueError(f"{self.name}: expects tensors with >= 2 dims, got shapes "
                             f"{tuple(a.shape)} and {tuple(b.shape)}")
        if a.shape[-1] != b.shape[-2]:
            raise ValueError(f"{self.name}: shapes {tuple(a.shape)} and {tuple(b.shape)} are not "
                             f"aligned: {a.shape[-1]} (dim -1) != {b.shape[-2]} (dim -2)")
        broadcast_shapes(self.name + " (batch dims)", a.shape[:-2], b.shape[:-2])
        return self.backend.matmul(a, b)

    def backward(self, grad):
        a, b = self.inputs
        return (sum_to_shape(BatchMatMul()(grad, _swap_last(b)), a.shape)
                if a.requires_grad else None,
                sum_to_shape(BatchMatMul()(_swap_last(a), grad), b.shape)
                if b.requires_grad else None)
