"""Normalization: LayerNorm and BatchNorm (training-mode statistics), each one fused
statistics kernel forward (backend.normalize) and one fused kernel backward
(backend.normalize_grad); under create_graph the backward is built from differentiable ops."""
from opgraph.operation import Operation
from opgraph.tape import is_recording


def _normalize_composite(x, axes, eps):
    """((x - mean) · r, r) with r = 1/sqrt(var + eps) over `axes`, from differentiable ops."""
    centered = x - x.mean(axes, keepdim=True)
    rstd = ((centered * centered).mean(axes, keepdim=True) + eps).rsqrt()
    return centered * rstd, rstd


class _Normalize(Operation):
    """Shared by LayerNorm and BatchNorm: x viewed as (A, C, B), statistics of each c over a
    and b; weight and bias (optional inputs) have the shape `param_shape` broadcast onto x."""
    saves = property(lambda op: tuple(range(len(op._inputs))))  # every input, not the output

    def _check_params(self, x, params, expected):
        for what, p in zip(("weight", "bias"), params):
            if p is not None and tuple(p.shape) != expected:
                raise ValueError(f"{self.name}: {what} must have shape {expected} for input "
                                 f"{tuple(x.shape)}, got {tuple(p.shape)}")

    def _affine(self, y, weight, bias):
        b = self.backend
        if weight is None and bias is None:
            return b.copy(y)  # not y itself: it is a view of the saved y3
        if weight is not None:
            y = b.binary("mul", y, b.reshape(weight, self.param_view))
        if bias is not None:
            y = b.binary("add", y, b.reshape(bias, self.param_view))
        return y

    def _forward(self, x, weight, bias, view):
        b = self.backend
        self.in_shape = tuple(x.shape)
        y3, mean, var = b.normalize(b.reshape(x, view), self.eps)
        self.mean, self.var = mean, var
        self.rstd = b.unary("rsqrt", b.binary("add", var, self.eps))
        self.y3 = y3
        self.view = view
        return self._affine(b.reshape(y3, self.in_shape), weight, bias)

    def backward(self, grad):
        weight, bias = self._params()
        g = grad * weight.reshape(self.param_view) if weight is not None else grad
        if is_recording():  # create_graph: a differentiable backward, for second order
            y, rstd = _normalize_composite(self.inputs[0], self.stat_axes, self.eps)
            mean_g = g.mean(self.stat_axes, keepdim=True)
            mean_gy = (g * y).mean(self.stat_axes, keepdim=True)
            dx = (g - mean_g - y * mean_gy) * rstd
        else:
            b = self.backend
            y = self.constant(b.reshape(self.y3, self.in_shape))
            dx = self.constant(b.reshape(b.normalize_grad(self.y3, self.rstd, b.reshape(
                g.data, self.view)), self.in_shape))
        grads = [dx]
        if weight is not None:
            grads.append((grad * y).sum(self.param_axes).reshape(weight.shape))
        if bias is not None:
            grads.append(grad.sum(self.param_axes).reshape(bias.shape))
        return tuple(grads)

    def _params(self):
        weight = self.inputs[1] if self.has_weight else None
        bias = self.inputs[-1] if self.has_bias else None
        return weight, bias


class LayerNorm(_Normalize):
    """y = (x - mean) / sqrt(var + eps) · weight + bias, mean and biased var over the last
    `ndim` dims (weight and bias of that trailing shape, each optional);
    with x̂ the normalized x, r = 1/sqrt(var + eps) and g = dy · weight:
    dx = r · (g - mean(g) - x̂ · mean(g · x̂)), dweight = Σ dy · x̂, dbias = Σ dy
    (the sums over the leading dims)"""

    def __init__(self, ndim, eps=1e-5, has_weight=True, has_bias=True):
        self.ndim, self.eps = ndim, eps
        self.has_weight, self.has_bias = has_weight, has_bias

    def forward(self, x, *params):
        weight = params[0] if self.has_weight else None
        bias = params[-1] if self.has_bias else None
        k = self.ndim
        if k < 1 or len(x.shape) < k:
            raise ValueError(f"{self.name}: cannot normalize the last {k} dims of an input of "
                             f"shape {tuple(x.shape)}")
        lead, trail = tuple(x.shape[:len(x.shape) - k]), tuple(x.shape[len(x.shape) - k:])
        self._check_params(x, (weight, bias), trail)
        rows, width = 1, 1
        for n in lead:
            rows *= n
        for n in trail:
            width *= n
        nd = len(x.shape)
        self.stat_axes = tuple(range(nd - k, nd))
        self.param_axes = tuple(range(nd - k))
        self.param_view = trail
        return self._forward(x, weight, bias, (1, rows, width))


class BatchNorm(_Normalize):
    """y = (x - mean_c) / sqrt(var_c + eps) · weight_c + bias_c for x (N, C, ...), the batch
    statistics of each channel c over N and the spatial dims (biased var; the op keeps
    mean and var for the running averages); with x̂, r = 1/sqrt(var + eps), g = dy · weight:
    dx = r · (g - mean(g) - x̂ · mean(g · x̂)), dweight = Σ dy · x̂, dbias = Σ dy
    (the means and sums over every dim but C)"""

    def __init__(self, eps=1e-5, has_weight=True, has_bias=True):
        self.eps = eps
        self.has_weight, self.has_bias = has_weight, has_bias

    def forward(self, x, *params):
        weight = params[0] if self.has_weight else None
        bias = params[-1] if self.has_bias else None
        if len(x.shape) < 2:
            raise ValueError(f"{self.name}: expects input (N, C, ...), got shape "
                             f"{tuple(x.shape)}")
        n, c = x.shape[0], x.shape[1]
        self._check_params(x, (weight, bias), (c,))
        spatial = 1
        for s in x.shape[2:]:
            spatial *= s
        nd = len(x.shape)
        self.stat_axes = (0,) + tuple(range(2, nd))
        self.param_axes = self.stat_axes
        self.param_view = (1, c) + (1,) * (nd - 2)
        return self._forward(x, weight, bias, (n, c, spatial))
