"""In-place updates with torch's rules: x.add_(y), x += y, x[key] = v, x.copy_(y), ...

Every in-place method computes its new value with the ordinary (out-of-place) functions
and writes it into the tensor's storage (`backend.setitem`), so that whatever shares that
memory -- `detach()`, views, the array given to `from_numpy` -- sees the change. Each write
stamps the storage (opgraph.versions): a backward that needs the overwritten values
raises instead of using the new ones.

* Not recording (`no_grad`, or nothing involved requires grad): compute, write.
* Recording, on a leaf that requires grad (or a view of one): RuntimeError, as torch;
  update parameters under `no_grad()`.
* Recording otherwise: the tensor's history is rebased onto the in-place op (torch's
  grad_fn): the tensor keeps its identity and gets the new value's op; its previous state
  becomes a hidden tensor that the ops which used it before keep pointing to.
* Views: a write into the result of `transpose`, `reshape`/`view` or basic indexing
  reaches the base tensor on every backend (written back where the backend's result was a
  copy); while recording, the base's history is rebased too (torch's CopySlices).
"""
import weakref

import numpy as np

from . import operation as _operation
from . import tape as _tape
from . import versions
from .operation import MultiOutputOperation
from .tensor import Tensor, as_tensors, check_fits, default_generator, fits

from opgraph.ops import elementwise as _ew
from opgraph.ops import shape as _sh


# ---- the machinery
def update(t, name, compute, operands=(), needs_original=False, kernel=None, cast="same_kind"):
    """Make `t` hold compute(t, *operands), in place, and return t. `needs_original`: the
    ops of `compute` keep their first input for backward (so it gets a copy of the old
    value while recording). `kernel(backend, t.data, *arrays)`, when given, computes the
    same on raw arrays: the fast path outside the graph (an optimizer's step), taken when
    every operand is a number or a tensor of t's backend that broadcasts to t's shape."""
    if not isinstance(t, Tensor):
        raise TypeError(f"{name}: expected a Tensor, got {type(t).__name__}")
    if _tape.is_recording() and (t.requires_grad or any(
            isinstance(o, Tensor) and o.requires_grad for o in operands)):
        _update_recorded(t, name, compute, operands, needs_original)
        return t
    _check_writable(t, name)
    arrays = _raw_operands(t, operands) if kernel is not None else None
    if arrays is not None:
        value = kernel(t.backend, t.data, *arrays)
        if tuple(value.shape) == t.shape:
            _write(t, Ellipsis, _cast_array(t, value, name, cast), next(_operation._sequence))
            return t
    value = _fitted(t, compute(t, *operands), name)
    _write(t, Ellipsis, value.data, next(_operation._sequence))
    return t


def assign(t, array):
    """Write a backend array of t's shape into t's storage, outside the graph (an
    optimizer's step): views and detach() see it, and the version counter counts it."""
    if tuple(array.shape) != t.shape:
        raise ValueError(f"assign: an array of shape {tuple(array.shape)} for a tensor of shape "
                         f"{t.shape}")
    _check_writable(t, "assign")
    _write(t, Ellipsis, array, next(_operation._sequence))


def _raw_operands(t, operands):
    """The operands as backend arrays and plain numbers, or None when one needs the
    general path (conversion, another backend, a shape that does not broadcast to t's)."""
    arrays = []
    exact = t.dtype.kind != "f"  # an integer tensor meeting a float: the general path says
    for o in operands:           # torch's result dtype (NumPy's would be float64)
        if exact and (isinstance(o, float) or isinstance(o, Tensor) and o.dtype.kind == "f"):
            return None
        if isinstance(o, Tensor):
            if o.backend is not t.backend or not _broadcasts(o.shape, t.shape):
                return None
            arrays.append(o.data)
        elif isinstance(o, (int, float)) and not isinstance(o, bool):
            if isinstance(o, int) and t.dtype.kind in "iu" and not fits(o, t.dtype):
                return None  # the general path wraps it as torch (NumPy would refuse it)
            arrays.append(o)
        else:
            return None
    return arrays


def _cast_array(t, array, name, cast):
    if array.dtype == t.dtype:
        return array
    if cast == "same_kind" and not np.can_cast(array.dtype, t.dtype, casting="same_kind"):
        raise RuntimeError(f"{name}: result type {array.dtype} can't be cast to the desired "
                           f"output type {t.dtype}")
    return t.backend.astype(array, t.dtype)


def setitem(t, key, value):
    """t[key] = value, in place (torch's index_put_): value broadcast to t[key], cast to
    t's dtype."""
    key = F.index_key(t, key)
    if _tape.is_recording() and (t.requires_grad or isinstance(value, Tensor) and value.requires_grad):
        value = _same_backend(t, value, "setitem")
        update(t, "setitem", lambda src, v: _sh.SetItem(key)(src, v), (value,))
        return
    _check_writable(t, "setitem")
    value = _same_backend(t, value, "setitem")
    target = _sh.Index(key)(t) if key is not Ellipsis else t  # validates the key, names the op
    if not _broadcasts(value.shape, target.shape):
        raise RuntimeError(f"setitem: shape mismatch: a value of shape {tuple(value.shape)} "
                           f"cannot be broadcast to the indexing result of shape "
                           f"{tuple(target.shape)}")
    _write(t, key, value.data, next(_operation._sequence))


def _broadcasts(shape, target):
    """True when an array of `shape` broadcasts to exactly `target`."""
    if len(shape) > len(target):
        return False
    return all(s in (1, t) for s, t in zip(shape[::-1], target[::-1]))


def _same_backend(t, value, name):
    if isinstance(value, Tensor):
        return value if value.backend is t.backend else F.to_backend(value, t.backend)
    return as_tensors(name, (t, value))[1]


def _check_writable(t, name):
    for view, base, op in _view_chain(t):
        if isinstance(op, _sh.BroadcastTo) and tuple(op.shape) != tuple(op.in_shape):
            raise RuntimeError(
                f"{name}: unsupported operation: the tensor is an expanded view (of shape "
                f"{tuple(op.in_shape)} broadcast to {tuple(op.shape)}): more than one element "
                "refers to a single memory location. Please clone() it before the in-place "
                "operation")
    flags = getattr(t.data, "flags", None)
    if flags is not None and not flags.writeable and not isinstance(t.data, np.generic):
        if 0 in getattr(t.data, "strides", (1,)):
            raise RuntimeError(
                f"{name}: unsupported operation: more than one element of the written-to "
                f"tensor (shape {tuple(t.shape)}) refers to a single memory location (a "
                "broadcast view). Please clone() the tensor before the in-place operation")
        raise RuntimeError(f"{name}: the tensor (shape {tuple(t.shape)}) lives in read-only "
                           "memory (a read-only NumPy array?); clone() it first")


def _fitted(t, value, name):
    """`value` as a tensor of t's shape and dtype, or the torch error for in-place results."""
    if not isinstance(value, Tensor):
        value = as_tensors(name, (t, value))[1]
    if value.shape != t.shape:
        raise RuntimeError(f"{name}: output with shape {list(t.shape)} doesn't match the "
                           f"broadcast shape {list(value.shape)} (an in-place result keeps the "
                           "tensor's shape)")
    if value.dtype != t.dtype:
        if not np.can_cast(value.dtype, t.dtype, casting="same_kind"):
            raise RuntimeError(f"{name}: result type {value.dtype} can't be cast to the desired "
                               f"output type {t.dtype}")
        value = F.astype(value, t.dtype)
    return value


def _view_link(t):
    """(base, op) when t is a view of base made by op (transpose, basic index, expand,
    reshape), else None."""
    link = getattr(t, "_view_of", None)
    if link is not None:
        return link
    op = t.op
    if type(op) is _sh.Reshape and op._inputs and not op._released:
        return op._inputs[0], op
    return None


def _view_chain(t):
    chain = []
    link = _view_link(t)
    while link is not None:
        base, op = link
        chain.append((t, base, op))
        t, link = base, _view_link(base)
    return chain


def _write(t, key, array, seq):
    """t[key] = array in t's storage, then copied back into the bases of which t is a view
    wherever the backend's view was a copy; every written storage is stamped `seq`."""
    bk = t.backend
    _own_storage(t)
    bk.setitem(t.data, key, array)
    versions.mark_written(bk, t.data, seq)
    for view, base, op in _view_chain(t):
        if bk.storage(base.data) is bk.storage(view.data):
            continue  # the same memory: the base has the new values already
        _own_storage(base)
        _write_back(bk, op, base.data, view.data)
        versions.mark_written(bk, base.data, seq)


def _own_storage(t):
    """A 0-d result of a NumPy reduction is an immutable NumPy scalar: give it an array."""
    if isinstance(t.data, np.generic):
        t.data = t.backend.copy(t.backend.asarray(t.data))


def _write_back(bk, op, base, view):
    """Put the contents of `view` (a copy made by op) back at its place in `base`."""
    if isinstance(op, _sh.Index):
        bk.setitem(base, op.key, view)
    elif isinstance(op, _sh.Transpose):
        bk.setitem(base, Ellipsis, bk.transpose(view, _sh.inverse_permutation(op.axes)))
    elif isinstance(op, _sh.Reshape):
        bk.setitem(base, Ellipsis, bk.reshape(view, tuple(base.shape)))
    # BroadcastTo views that really expand are refused before anything is written; an
    # expand to the same shape is the base itself
    elif isinstance(op, _sh.BroadcastTo):
        bk.setitem(base, Ellipsis, view)


def _put(op, base, value):
    """The base tensor with `value` (the new contents of its view made by op) in place of
    the view, recorded (the base's side of an in-place write into a view)."""
    if isinstance(op, _sh.Index):
        return _sh.SetItem(op.key)(base, value)
    if isinstance(op, _sh.Transpose):
        return _sh.Transpose(_sh.inverse_permutation(op.axes))(value)
    return _sh.Reshape(tuple(base.shape))(value)  # Reshape, and BroadcastTo to the same shape


def _reapplied(op, base):
    """A fresh op like `op` (a view op) applied to base."""
    if isinstance(op, _sh.Index):
        return _sh.Index(op.key)(base)
    if isinstance(op, _sh.Transpose):
        return _sh.Transpose(op.axes)(base)
    if isinstance(op, _sh.BroadcastTo):
        return _sh.BroadcastTo(op.shape)(base)
    return _sh.Reshape(op.shape)(base)


def _update_recorded(t, name, compute, operands, needs_original):
    if t.op is None and t.requires_grad:
        raise RuntimeError(
            f"{name}: a leaf tensor that requires grad (shape {tuple(t.shape)}) is being used "
            "in an in-place operation while recording, as torch refuses: update it inside "
            "`with opgraph.no_grad():` (parameter updates), or work on a clone()")
    chain = _view_chain(t)
    for view, base, op in chain:
        if base.op is None and base.requires_grad:
            raise RuntimeError(
                f"{name}: a view of a leaf tensor that requires grad (the {op.name} of a tensor "
                f"of shape {tuple(base.shape)}) is being used in an in-place operation while "
                "recording; update the leaf inside `with opgraph.no_grad():`")
    if isinstance(t.op, MultiOutputOperation):
        raise RuntimeError(
            f"{name}: the tensor is one of the outputs of {t.op.name}; such outputs cannot be "
            "modified in place while recording (as torch); clone() it first")
    _check_writable(t, name)
    link = chain[0][1:] if chain else None
    seq = next(_operation._sequence)  # before the new ops: they see the write as done
    old = _retire(t)
    value = _fitted(t, compute(_ew.Clone()(old) if needs_original else old, *operands), name)
    if link is None:
        _own_storage(t)
        t.backend.setitem(t.data, Ellipsis, value.data)
        versions.mark_written(t.backend, t.data, seq)
        _adopt(t, value)
        return
    base, op = link
    # the base takes the new values at the view's place, in place and recorded (CopySlices)
    _update_recorded(base, name, lambda b: _put(op, b, value), (), False)
    fresh = _reapplied(op, base)
    bk = t.backend
    if bk.storage(t.data) is not bk.storage(base.data):  # the backend's view is a copy
        _own_storage(t)
        bk.setitem(t.data, Ellipsis, fresh.data)
        versions.mark_written(bk, t.data, seq)
    _adopt(t, fresh)


def _retire(t):
    """A hidden tensor holding t's present state (data, op); the ops that used t so far,
    and t's creator, now point to it, so that t itself can take a new history."""
    old = Tensor._make(t.data, t.backend, t.requires_grad, t.op)
    if t.op is not None:
        t.op._output = weakref.ref(old)
    floor = t.op._seq if t.op is not None else -1  # t's users were recorded after t's creator
    for tape in _tape.all_tapes():
        refs = tape._refs
        for i in range(len(refs) - 1, -1, -1):
            op = refs[i]()
            if op is None:
                continue
            if op._seq <= floor:
                break
            inputs = op._inputs
            if any(x is t for x in inputs):
                op._inputs = tuple(old if x is t else x for x in inputs)
    return old


def _adopt(t, value):
    """t becomes the tensor `value` stands for: its op's output, with its history."""
    t.requires_grad = value.requires_grad
    t.op = value.op
    if value.op is not None:
        value.op._output = weakref.ref(t)


# ---- the in-place methods
def _scaled(other, alpha):
    return other if alpha == 1 else F.mul(other, alpha)


def _raw_scaled(bk, other, alpha):
    return other if alpha == 1 else bk.binary("mul", other, alpha)


def _filled(bk, a, value):
    """fill_ and copy_ on raw arrays: the value broadcast to a's shape (cast later)."""
    if isinstance(value, (int, float)):
        return bk.full(tuple(a.shape), value, a.dtype)
    return bk.broadcast_to(value, tuple(a.shape))


def add_(x, other, alpha=1):
    """x += alpha · other, in place."""
    return update(x, "add_", lambda s, o: F.add(s, _scaled(o, alpha)), (other,),
                  kernel=lambda bk, a, o: bk.binary("add", a, _raw_scaled(bk, o, alpha)))


def sub_(x, other, alpha=1):
    """x -= alpha · other, in place."""
    return update(x, "sub_", lambda s, o: F.sub(s, _scaled(o, alpha)), (other,),
                  kernel=lambda bk, a, o: bk.binary("sub", a, _raw_scaled(bk, o, alpha)))


def _needs_self(other):
    # a product's backward reads x only for the gradient of the other factor
    return isinstance(other, Tensor) and other.requires_grad


def mul_(x, other):
    """x *= other, in place."""
    return update(x, "mul_", F.mul, (other,), needs_original=_needs_self(other),
                  kernel=lambda bk, a, o: bk.binary("mul", a, o))


def div_(x, other):
    """x /= other, in place."""
    # an integer x takes the general path: its quotient is float32, as F.div's (the raw
    # kernel would say NumPy's float64)
    floating = isinstance(x, Tensor) and x.dtype.kind == "f"
    return update(x, "div_", F.div, (other,), needs_original=_needs_self(other),
                  kernel=(lambda bk, a, o: bk.binary("div", a, o)) if floating else None)


def floor_divide_(x, other):
    """x //= other, in place."""
    return update(x, "floor_divide_", F.floor_divide, (other,))


def remainder_(x, other):
    """x %= other, in place."""
    return update(x, "remainder_", F.remainder, (other,), needs_original=_needs_self(other))


def fmod_(x, other):
    """x = fmod(x, other), in place."""
    return update(x, "fmod_", F.fmod, (other,), needs_original=_needs_self(other))


def pow_(x, exponent):
    """x **= exponent, in place."""
    return update(x, "pow_", F.pow, (exponent,), needs_original=True)


def neg_(x): return update(x, "neg_", F.neg)
def exp_(x): return update(x, "exp_", F.exp)
def sqrt_(x): return update(x, "sqrt_", F.sqrt)
def rsqrt_(x): return update(x, "rsqrt_", F.rsqrt)
def relu_(x): return update(x, "relu_", F.relu)
def sigmoid_(x): return update(x, "sigmoid_", F.sigmoid)
def tanh_(x): return update(x, "tanh_", F.tanh)
def abs_(x): return update(x, "abs_", F.abs, needs_original=True)
def log_(x): return update(x, "log_", F.log, needs_original=True)
def sin_(x): return update(x, "sin_", F.sin, needs_original=True)
def cos_(x): return update(x, "cos_", F.cos, needs_original=True)


def clamp_(x, min=None, max=None):
    """x = clamp(x, min, max), in place."""
    return update(x, "clamp_", lambda s, lo, hi: F.clamp(s, lo, hi), (min, max),
                  needs_original=True)


def fill_(x, value, name="fill_"):
    """Every element of x set to `value` (a number or a 0-d tensor), in place."""
    if isinstance(value, Tensor) and value.ndim != 0:
        raise RuntimeError(f"{name}: only supports a number or a 0-d tensor as the value, got "
                           f"a tensor of shape {tuple(value.shape)}")
    if isinstance(x, Tensor):
        check_fits(name, value, x.dtype)
    return update(x, name, lambda s, v: _sh.SetItem(Ellipsis)(s, _cast_to(v, s)), (value,),
                  kernel=_filled, cast="unsafe")


def zero_(x):
    """Every element of x set to 0, in place."""
    return fill_(x, 0, "zero_")


def _cast_to(value, like):
    """value (a number or a tensor) as a tensor of like's dtype on like's backend: fill_ and
    copy_ convert any dtype, as torch's copy_ (differentiably between float dtypes)."""
    if not isinstance(value, Tensor):
        host = np.asarray(value)
        if host.dtype.kind not in "biuf":
            raise TypeError(f"expected a number, an array or a Tensor, got "
                            f"{type(value).__name__}")
        return Tensor._make(like.backend.asarray(host.astype(like.dtype)), like.backend)
    if value.backend is not like.backend:
        value = F.to_backend(value, like.backend)
    if value.dtype == like.dtype:
        return value
    if value.dtype.kind == "f" and like.dtype.kind == "f":
        return F.astype(value, like.dtype)
    return Tensor._make(like.backend.astype(value.data, like.dtype), like.backend)


def copy_(x, src):
    """x's elements replaced by src's (broadcast to x's shape, converted to x's dtype and
    backend), in place; differentiable in src."""
    if not isinstance(src, Tensor):
        src = _cast_to(src, x)
    if not _broadcasts(src.shape, x.shape):
        raise RuntimeError(f"copy_: the source of shape {tuple(src.shape)} cannot be "
                           f"broadcast to the destination's shape {tuple(x.shape)}")
    return update(x, "copy_", lambda s, v: _sh.SetItem(Ellipsis)(s, _cast_to(v, s)), (src,),
                  kernel=_filled, cast="unsafe")


def masked_fill_(x, mask, value):
    """x's elements where `mask` is True set to `value`, in place."""
    return update(x, "masked_fill_", lambda s, v: F.masked_fill(s, mask, v), (value,))


def addcmul_(x, tensor1, tensor2, value=1):
    """x += value · tensor1 · tensor2, in place."""
    return update(x, "addcmul_", lambda s, a, b: F.add(s, _scaled(F.mul(a, b), value)),
                  (tensor1, tensor2), kernel=lambda bk, s, a, b: bk.binary(
                      "add", s, _raw_scaled(bk, bk.binary("mul", a, b), value)))


def addcdiv_(x, tensor1, tensor2, value=1):
    """x += value · tensor1 / tensor2, in place."""
    return update(x, "addcdiv_", lambda s, a, b: F.add(s, _scaled(F.div(a, b), value)),
                  (tensor1, tensor2), kernel=lambda bk, s, a, b: bk.binary(
                      "add", s, _raw_scaled(bk, bk.binary("div", a, b), value)))


def lerp_(x, end, weight):
    """x += weight · (end - x), in place."""
    return update(x, "lerp_", lambda s, e, w: F.add(s, F.mul(w, F.sub(e, s))), (end, weight))


def _random_fill(x, name, draw):
    if x.dtype.kind != "f":
        raise TypeError(f"{name}: needs a floating-point tensor, got dtype {x.dtype}")
    host = draw(default_generator(), x.shape).astype(x.dtype)
    return update(x, name, lambda s, v: _sh.SetItem(Ellipsis)(s, v),
                  (Tensor._make(x.backend.asarray(host), x.backend),))


def uniform_(x, a=0.0, b=1.0):
    """x filled with samples of U(a, b) from the generator og.manual_seed seeds, in place."""
    return _random_fill(x, "uniform_", lambda g, shape: g.uniform(a, b, size=shape))


def normal_(x, mean=0.0, std=1.0):
    """x filled with samples of N(mean, std²) from the generator og.manual_seed seeds."""
    return _random_fill(x, "normal_", lambda g, shape: g.normal(mean, std, size=shape))


def setitem_method(x, key, value):
    setitem(x, key, value)


# last: opgraph.functions imports this module's methods at its end, and either may load first
from . import functions as F  # noqa: E402
