"""The Optimizer base class and SGD, Adam, AdamW, RMSprop, Adagrad."""
import math
import warnings

from .. import _checks
from ..inplace import assign
from ..tensor import Tensor, weak_scalar

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad"]


class Optimizer:
    """Base class: `params` is an iterable of Parameters (or of dicts
    {"params": [...], "lr": ...} for per-group settings, as in PyTorch)."""

    def __init__(self, params, defaults):
        name = type(self).__name__
        self.defaults = dict(defaults)
        self.param_groups = []
        self.state = {}  # id(param) -> {"backend": ..., buffers as backend arrays, "step": ...}
        if isinstance(params, Tensor):  # list(p) would iterate its rows: torch's TypeError
            raise TypeError(f"{name}: params must be an iterable of Tensors or dicts, got a "
                            f"Tensor of shape {params.shape} (pass [p] or model.parameters())")
        _check_ordered(name, params)
        params = list(params)
        if not params:
            raise ValueError(f"{name}: got an empty parameter list")
        if not isinstance(params[0], dict):
            params = [{"params": params}]
        for group in params:
            self.add_param_group(group)

    def add_param_group(self, group):
        """Add a group {"params": [...], hyper-parameters...}; the others default to the
        optimizer's. As torch: a parameter listed twice in the group is a UserWarning (and
        is updated once per step here; torch updates it twice), a parameter already in
        another group is a ValueError."""
        name = type(self).__name__
        if not isinstance(group, dict):
            raise TypeError(f"{name}: a parameter group must be a dict, got "
                            f"{type(group).__name__}")
        group = dict(group)
        if "params" not in group:
            raise KeyError(f"{name}: a parameter group needs a 'params' entry, got keys "
                           f"{sorted(group)}")
        ps = group["params"]
        if not isinstance(ps, Tensor):
            _check_ordered(name, ps)
        ps = [ps] if isinstance(ps, Tensor) else list(ps)
        for p in ps:
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: parameters must be Tensors, got "
                                f"{type(p).__name__}")
            if not p.is_leaf:  # its update would never reach the tensor the model uses
                raise ValueError(f"{name}: can't optimize a non-leaf Tensor (shape "
                                 f"{tuple(p.shape)}, computed by {p.op.name})")
        unique = list({id(p): p for p in ps}.values())
        if len(unique) != len(ps):
            warnings.warn("optimizer contains a parameter group with duplicate parameters; "
                          "each is kept once (torch would update it once per listing)",
                          UserWarning, stacklevel=3)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in unique):
            raise ValueError(f"{name}: some parameters appear in more than one parameter group")
        group["params"] = unique
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self.param_groups.append(group)

    def zero_grad(self, set_to_none=True):
        """Forget the gradients (set `.grad` to None, or to zeros)."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad = Tensor._make(p.backend.zeros(p.shape, p.dtype), p.backend)

    def step(self, closure=None):
        """One update of every parameter that has a gradient. `closure` (optional, as
        torch) re-evaluates the model and returns the loss; step returns that loss."""
        loss = None
        if closure is not None:
            from ..tape import enable_grad
            with enable_grad():
                loss = closure()
        self._step()
        return loss

    def _step(self):
        for group in self.param_groups:
            # NumPy scalars (lr=np.float64(0.1)) as Python numbers, which never promote a
            # float32 parameter; read each step, so values a scheduler sets count too
            hyper = {k: _plain(v) for k, v in group.items()}
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad.data
                if p.grad.backend is not p.backend:
                    raise ValueError(f"{type(self).__name__}: the gradient of a parameter of "
                                     f"shape {tuple(p.shape)} lives on {p.grad.backend.name}, "
                                     f"the parameter on {p.backend.name}")
                if tuple(g.shape) != tuple(p.shape):
                    raise ValueError(f"{type(self).__name__}: gradient of shape {tuple(g.shape)}"
                                     f" for a parameter of shape {tuple(p.shape)}")
                if g.dtype != p.dtype:
                    g = p.backend.astype(g, p.dtype)
                state = self.state.setdefault(id(p), {})
                if state.get("backend", p.backend) is not p.backend:
                    _move_state(state, p.backend)   # the module was moved with .to()
                state["backend"] = p.backend
                storage = p.data
                self._update(p, g, hyper, state)
                if p.data is not storage:  # in place, as torch's: views, detach() and the
                    new, p.data = p.data, storage  # version counter see the step (and an
                    assign(p, new)                 # update never changes the dtype)

    def _update(self, p, g, group, state):
        raise NotImplementedError

    def state_dict(self):
        """What resuming needs, as torch.optim: {"state": {index: {name: value}},
        "param_groups": [{hyper-parameters, "params": [index, ...]}]}. Parameters are
        numbered in group order; buffers are NumPy copies, step counts ints."""
        index = {id(p): i for i, p in enumerate(self._all_params())}
        state = {}
        for p in self._all_params():
            entry = self.state.get(id(p))
            if entry:
                state[index[id(p)]] = {k: (v if isinstance(v, (int, float)) else
                                           entry["backend"].to_numpy(v).copy())
                                       for k, v in entry.items() if k != "backend"}
        groups = [{**{k: v for k, v in g.items() if k != "params"},
                   "params": [index[id(p)] for p in g["params"]]} for g in self.param_groups]
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore what state_dict returned (for the same parameters, in the same order).
        Everything is checked before anything changes."""
        name = type(self).__name__
        groups = state_dict.get("param_groups")
        if groups is None or len(groups) != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict: expected {len(self.param_groups)} "
                             f"parameter groups, got {None if groups is None else len(groups)}")
        for i, (mine, theirs) in enumerate(zip(self.param_groups, groups)):
            if len(theirs.get("params", ())) != len(mine["params"]):
                raise ValueError(f"{name}.load_state_dict: group {i} has {len(mine['params'])} "
                                 f"parameters, the state dict {len(theirs.get('params', ()))}")
        params = self._all_params()
        new_state = {}
        for i, entry in state_dict.get("state", {}).items():
            if not 0 <= int(i) < len(params):
                raise ValueError(f"{name}.load_state_dict: state for parameter {i}, but there "
                                 f"are {len(params)} parameters")
            p = params[int(i)]
            restored = {"backend": p.backend}
            for key, value in entry.items():
                if isinstance(value, (int, float)):
                    restored[key] = value
                    continue
                value = value.numpy() if isinstance(value, Tensor) else value
                if tuple(value.shape) != tuple(p.shape):
                    raise ValueError(f"{name}.load_state_dict: {key} of parameter {i} has shape "
                                     f"{tuple(value.shape)}, the parameter {tuple(p.shape)}")
                restored[key] = p.backend.asarray(value, dtype=p.dtype)
            new_state[id(p)] = restored
        for mine, theirs in zip(self.param_groups, groups):
            mine.update({k: v for k, v in theirs.items() if k != "params"})
        self.state = new_state

    def _all_params(self):
        return [p for g in self.param_groups for p in g["params"]]


def _check_ordered(owner, params):
    if isinstance(params, (set, frozenset)):
        raise TypeError(f"{owner}: parameters must be in an ordered collection (a list), not "
                        "a set, whose order changes between runs (as torch)")


def _plain(value):
    return tuple(_plain(v) for v in value) if isinstance(value, tuple) else weak_scalar(value)


def _move_state(state, backend):
    old = state["backend"]
    for key, value in state.items():
        if key != "backend" and old.is_array(value):
            state[key] = backend.asarray(old.to_numpy(value))


class SGD(Optimizer):
    """Stochastic gradient descent, as torch.optim.SGD:

        g = grad + weight_decay * p
        buf = momentum * buf + (1 - dampening) * g      (buf = g at the first step)
        g = g + momentum * buf if nesterov else buf     (when momentum != 0)
        p = p - lr * g
    """

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, *, maximize=False, foreach=None, differentiable=False,
                 fused=None):
        lr = _hyper("SGD", "lr", lr)
        momentum = _hyper("SGD", "momentum", momentum)
        dampening = _hyper("SGD", "dampening", dampening, low=None)
        weight_decay = _hyper("SGD", "weight_decay", weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov needs momentum > 0 and dampening 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=bool(nesterov),
                                      maximize=bool(maximize)))

    def _update(self, p, g, group, state):
        b = p.backend
        wd, mom = group["weight_decay"], group["momentum"]
        if group.get("maximize"):
            g = b.unary("neg", g)
        if wd:
            g = b.binary("add", g, b.binary("mul", p.data, wd))
        if mom:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = b.copy(g)
            else:
                buf = b.binary("add", b.binary("mul", buf, mom),
                               b.binary("mul", g, 1 - group["dampening"]))
            state["momentum_buffer"] = buf
            g = b.binary("add", g, b.binary("mul", buf, mom)) if group["nesterov"] else buf
        p.data = b.binary("sub", p.data, b.binary("mul", g, group["lr"]))


class Adam(Optimizer):
    """Adam, as torch.optim.Adam (weight_decay is L2 added to the gradient):

        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    amsgrad=True uses the running maximum of v instead of v.
    """

    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False, fused=None):
        name = type(self).__name__
        lr, eps = _hyper(name, "lr", lr), _hyper(name, "eps", eps)
        weight_decay = _hyper(name, "weight_decay", weight_decay)
        betas = _betas(name, betas)
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      amsgrad=bool(amsgrad), maximize=bool(maximize)))

    def _update(self, p, g, group, state):
        b = p.backend
        lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], \
            group["weight_decay"]
        if group.get("maximize"):
            g = b.unary("neg", g)
        if wd:
            if self._decoupled:
                p.data = b.binary("mul", p.data, 1 - lr * wd)
            else:
                g = b.binary("add", g, b.binary("mul", p.data, wd))
        if "step" not in state:
            state["step"] = 0
            state["exp_avg"] = b.zeros(p.shape, p.dtype)
            state["exp_avg_sq"] = b.zeros(p.shape, p.dtype)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = b.zeros(p.shape, p.dtype)
        state["step"] += 1
        t = state["step"]
        m = b.binary("add", b.binary("mul", state["exp_avg"], beta1),
                     b.binary("mul", g, 1 - beta1))
        v = b.binary("add", b.binary("mul", state["exp_avg_sq"], beta2),
                     b.binary("mul", b.binary("mul", g, g), 1 - beta2))
        state["exp_avg"], state["exp_avg_sq"] = m, v
        if group["amsgrad"]:
            v = state["max_exp_avg_sq"] = b.binary("maximum", state["max_exp_avg_sq"], v)
        bias1 = 1 - beta1 ** t
        bias2_sqrt = math.sqrt(1 - beta2 ** t)
        denom = b.binary("add", b.binary("div", b.unary("sqrt", v), bias2_sqrt), eps)
        p.data = b.binary("sub", p.data, b.binary("mul", b.binary("div", m, denom), lr / bias1))


class AdamW(Adam):
    """Adam with decoupled weight decay (torch.optim.AdamW): p *= 1 - lr * weight_decay."""

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, foreach=None, capturable=False,
                 differentiable=False, fused=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)


class RMSprop(Optimizer):
    """RMSprop, as torch.optim.RMSprop:

        g = grad + weight_decay * p
        v = alpha * v + (1 - alpha) * g * g
        centered: m = m + (1 - alpha) * (g - m),  avg = sqrt(v - m * m) + eps
        else:     avg = sqrt(v) + eps
        momentum > 0: buf = momentum * buf + g / avg,  p = p - lr * buf
        else:         p = p - lr * g / avg
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False, capturable=False, foreach=None, maximize=False,
                 differentiable=False):
        lr, alpha = _hyper("RMSprop", "lr", lr), _hyper("RMSprop", "alpha", alpha)
        eps = _hyper("RMSprop", "eps", eps)
        weight_decay = _hyper("RMSprop", "weight_decay", weight_decay)
        momentum = _hyper("RMSprop", "momentum", momentum)
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=bool(centered),
                                      maximize=bool(maximize)))

    def _update(self, p, g, group, state):
        b = p.backend
        alpha, eps, wd, mom = group["alpha"], group["eps"], group["weight_decay"], \
            group["momentum"]
        if group.get("maximize"):
            g = b.unary("neg", g)
        if wd:
            g = b.binary("add", g, b.binary("mul", p.data, wd))
        if "step" not in state:
            state["step"] = 0
            state["square_avg"] = b.zeros(p.shape, p.dtype)
            if mom > 0:
                state["momentum_buffer"] = b.zeros(p.shape, p.dtype)
            if group["centered"]:
                state["grad_avg"] = b.zeros(p.shape, p.dtype)
        state["step"] += 1
        v = b.binary("add", b.binary("mul", state["square_avg"], alpha),
                     b.binary("mul", b.binary("mul", g, g), 1 - alpha))
        state["square_avg"] = v
        if group["centered"]:
            m = state["grad_avg"]
            m = b.binary("add", m, b.binary("mul", b.binary("sub", g, m), 1 - alpha))
            state["grad_avg"] = m
            avg = b.binary("add", b.unary("sqrt", b.binary("sub", v, b.binary("mul", m, m))),
                           eps)
        else:
            avg = b.binary("add", b.unary("sqrt", v), eps)
        if mom > 0:
            buf = state.setdefault("momentum_buffer", b.zeros(p.shape, p.dtype))
            buf = b.binary("add", b.binary("mul", buf, mom), b.binary("div", g, avg))
            state["momentum_buffer"] = buf
            p.data = b.binary("sub", p.data, b.binary("mul", buf, group["lr"]))
        else:
            p.data = b.binary("sub", p.data, b.binary("mul", b.binary("div", g, avg),
                                                      group["lr"]))


class Adagrad(Optimizer):
    """Adagrad, as torch.optim.Adagrad:

        g = grad + weight_decay * p
        clr = lr / (1 + (t - 1) * lr_decay)          (t = 1, 2, ... the step)
        s = s + g * g                                 (s starts at initial_accumulator_value)
        p = p - clr * g / (sqrt(s) + eps)
    """

    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0,
                 initial_accumulator_value=0.0, eps=1e-10, foreach=None, *, maximize=False,
                 differentiable=False, fused=None):
        lr = _hyper("Adagrad", "lr", lr)
        lr_decay = _hyper("Adagrad", "lr_decay", lr_decay)
        weight_decay = _hyper("Adagrad", "weight_decay", weight_decay)
        initial = _hyper("Adagrad", "initial_accumulator_value", initial_accumulator_value)
        eps = _hyper("Adagrad", "eps", eps)
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial, eps=eps,
                                      maximize=bool(maximize)))
        for group in self.param_groups:  # torch creates the state at construction
            for p in group["params"]:
                self.state[id(p)] = {"backend": p.backend, "step": 0,
                                     "sum": p.backend.full(p.shape, group[
                                         "initial_accumulator_value"], p.dtype)}

    def _update(self, p, g, group, state):
        b = p.backend
        if group.get("maximize"):
            g = b.unary("neg", g)
        if group["weight_decay"]:
            g = b.binary("add", g, b.binary("mul", p.data, group["weight_decay"]))
        if "sum" not in state:
            state["step"] = 0
            state["sum"] = b.full(p.shape, group["initial_accumulator_value"], p.dtype)
        state["step"] += 1
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        state["sum"] = b.binary("add", state["sum"], b.binary("mul", g, g))
        std = b.binary("add", b.unary("sqrt", state["sum"]), group["eps"])
        p.data = b.binary("sub", p.data, b.binary("mul", b.binary("div", g, std), clr))


def _hyper(owner, what, value, low=0.0):
    """A hyper-parameter as a Python float: NaN, negative (below `low`) and non-numbers
    are errors naming the optimizer; NumPy scalars become Python numbers, so they never
    promote float32 parameters."""
    return _checks.number(owner, what, value, low)


def _betas(owner, betas):
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"{owner}: betas must be a pair (beta1, beta2), got {betas!r}")
    return tuple(_checks.number(owner, f"betas[{i}]", b, 0.0, 1.0, high_open=True)
                 for i, b in enumerate(betas))
