"""The tape: what ops ran, and the reverse replay that turns it into gradients.

Each op records itself on the current tape when it runs with recording on.
The tape holds *weak* references: an op lives exactly as long as the
tensors that depend on it. So a forward pass that is never backpropagated
leaves nothing behind, and a long training loop keeps memory flat.
"""
import threading
import weakref

from . import versions as _versions


class _State(threading.local):
    def __init__(self):
        self.recording = True
        self.tapes = [Tape()]  # bottom: this thread's default tape


def current_tape():
    return _state.tapes[-1]


def is_recording():
    return _state.recording


_tapes = weakref.WeakSet()  # every live tape (an in-place op repoints the ops recorded on them)


def all_tapes():
    return tuple(_tapes)


class Tape:
    """Records ops in the order they run; a context manager for a tape of your own."""

    def __init__(self):
        self._refs = []
        self._compact_at = 1024
        self.parent = None
        _tapes.add(self)

    def record(self, op):
        refs = self._refs
        refs.append(weakref.ref(op))
        if len(refs) >= self._compact_at:
            self._compact()

    def _compact(self):
        self._refs = [r for r in self._refs if (op := r()) is not None and not op._released]
        self._compact_at = max(1024, 2 * len(self._refs))

    @property
    def ops(self):
        """The live recorded ops, in the order they ran."""
        return [op for r in self._refs if (op := r()) is not None and not op._released]

    def __len__(self):
        return len(self.ops)

    def __enter__(self):
        self.parent = current_tape()
        _state.tapes.append(self)
        return self

    def __exit__(self, *exc):
        _state.tapes.remove(self)
        return False

    def owns(self, op):
        tape = op._tape
        while tape is not None:
            if tape is self:
                return True
            tape = tape.parent
        return False

    def gradient(self, target, sources, grad_output=None, retain_graph=False, create_graph=False):
        """Gradients of `target` w.r.t. `sources` through the ops recorded on this tape (or on
        tapes opened inside it); ops recorded elsewhere count as constants."""
        return grad(target, sources, grad_output, retain_graph, create_graph, tape=self)

    def __str__(self):
        ops = self.ops
        released = any((op := r()) is None or op._released for r in self._refs)
        note = (" (not listed: ops released by backward, or freed with their tensors; "
                "backward(retain_graph=True) keeps them)") if released else ""
        lines = [f"Tape with {len(ops)} ops{note}:"]
        for i, op in enumerate(ops):
            ins = ", ".join(str(tuple(t.shape)) for t in op.inputs)
            outs = ", ".join(str(tuple(t.shape)) for t in op.outputs if t is not None)
            lines.append(f"  {i:3d}  {op.name:<16s} ({ins}) -> {outs}")
        return "\n".join(lines)

    def print(self):
        print(str(self))

    def __repr__(self):
        return f"<Tape: {len(self.ops)} ops>"


_state = _State()
_accumulation_lock = threading.RLock()


class no_grad:
    """Turn recording off: `with no_grad():`, `@no_grad()` or `@no_grad`, as torch.no_grad."""

    def __new__(cls, func=None):
        self = super().__new__(cls)
        return self(func) if callable(func) else self

    def __init__(self, func=None):
        pass

    def __enter__(self):
        self._prev = _state.recording
        _state.recording = False

    def __exit__(self, *exc):
        _state.recording = self._prev
        return False

    def __call__(self, fn):
        import functools

        mode = type(self)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with mode():
                return fn(*args, **kwargs)
        return wrapper


class inference_mode(no_grad):
    """torch.inference_mode: recording off, as no_grad (`inference_mode(False)` changes
    nothing); a context manager and a decorator, with or without parentheses."""

    def __new__(cls, mode=True):
        self = object.__new__(cls)
        if callable(mode):
            self.mode = True
            return self(mode)
        self.mode = bool(mode)
        return self

    def __init__(self, mode=True):
        pass

    def __enter__(self):
        self._prev = _state.recording
        if self.mode:
            _state.recording = False

    def __call__(self, fn):
        import functools

        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with inference_mode(mode):
                return fn(*args, **kwargs)
        return wrapper


class enable_grad(no_grad):
    """Turn recording back on inside a no_grad region."""

    def __enter__(self):
        self._prev = _state.recording
        _state.recording = True


class _set_recording(no_grad):
    def __new__(cls, mode):
        return object.__new__(cls)

    def __init__(self, mode):
        self.mode = mode

    def __enter__(self):
        self._prev = _state.recording
        _state.recording = self.mode


# ---------------------------------------------------------------------------
# the reverse replay


def recorded_ops(roots, released_message, tape=None):
    """The recorded ops the root tensors depend on, each once (on `tape` and the tapes
    opened inside it, when given); a RuntimeError with `released_message(op)` when one of
    them was released by an earlier backward."""
    found = {}
    stack = [t.op for t in roots if t.op is not None]
    while stack:
        op = stack.pop()
        if id(op) in found:
            continue
        if op._released:
            raise RuntimeError(released_message(op))
        if tape is not None and not tape.owns(op):
            continue
        found[id(op)] = op
        for t in op._inputs:
            if t.op is not None and t.requires_grad:
                stack.append(t.op)
    return list(found.values())


def _released_for_backward(op):
    return (f"backward through {op.name} a second time: its graph was released by an earlier "
            "backward; pass retain_graph=True to the first backward to keep it")


def _ops_to_replay(roots, tape, targets=None):
    """Ops the roots depend on, latest first (recording order is a topological order).
    With `targets` (tensors), only the ops on a path from a root to a target: what
    opgraph.grad needs; the rest of the graph is neither run nor released."""
    ops = sorted(recorded_ops(roots, _released_for_backward, tape), key=lambda op: op._seq)
    if targets is not None:
        target_ids = {id(t) for t in targets}
        leads = set()  # ids of the ops from which a target can be reached
        for op in ops:  # inputs come before the ops that use them
            if any(id(t) in target_ids or id(t.op) in leads for t in op._inputs):
                leads.add(id(op))
        ops = [op for op in ops if id(op) in leads]
    return ops[::-1]


def _accumulate(grads, tensor, g):
    entry = grads.get(id(tensor))
    if entry is None:
        grads[id(tensor)] = [tensor, g]
    else:
        entry[1] = entry[1] + g


_retaining = weakref.WeakValueDictionary()  # id -> non-leaf tensor whose .grad is kept


def retain_grad(tensor):
    """Keep the gradient of a non-leaf tensor in its .grad at backward (torch's
    retain_grad); a leaf keeps its gradient anyway."""
    if not tensor.requires_grad:
        raise RuntimeError(f"retain_grad: the tensor (shape {tuple(tensor.shape)}) does not "
                           "require grad")
    if tensor.op is not None:
        _retaining[id(tensor)] = tensor


def _replay(roots, root_grads, retain_graph, create_graph, tape=None, keep=(), retained=None):
    """Backpropagate; returns {id(tensor): [tensor, grad]} for leaves and for `keep`, and
    appends [tensor, grad] of the tensors marked by retain_grad to `retained` (a list)."""
    from .tensor import Tensor
    # as in torch: a differentiable backward may reference the forward graph, so keep it
    retain_graph = retain_graph or create_graph
    grads = {}
    for t, g in zip(roots, root_grads):
        _accumulate(grads, t, g)
    kept = {}
    keep_ids = {id(t) for t in keep}
    with _set_recording(create_graph):
        for op in _ops_to_replay(roots, tape, targets=keep or None):
            ref = op._output
            if type(ref) is weakref.ref:  # one output (most ops): no lists to build
                out = ref()
                entry = grads.pop(id(out), None) if out is not None else None
                if entry is None:
                    continue
                if keep_ids and id(out) in keep_ids:
                    kept[id(out)] = entry
                if retained is not None and id(out) in _retaining:
                    retained.append(entry)
                out_grads = (entry[1],)
            else:
                out_grads = []
                for out in op.outputs:
                    entry = grads.pop(id(out), None) if out is not None else None
                    if entry is not None and keep_ids and id(out) in keep_ids:
                        kept[id(out)] = entry
                    if entry is not None and retained is not None and id(out) in _retaining:
                        retained.append(entry)
                    out_grads.append(None if entry is None else entry[1])
                if out_grads.count(None) == len(out_grads):
                    continue
            if create_graph and op.once_differentiable:
                raise RuntimeError(
                    f"{op.name} is once-differentiable: its backward calls a raw kernel, so a "
                    "second-order gradient (create_graph=True) cannot pass through it")
            if op._seq < _versions.last_write[0]:  # something was written in place since
                _versions.check_saved(op)
            in_grads = op._backward_all(out_grads)
            inputs = op._inputs
            if len(in_grads) != len(inputs):
                raise RuntimeError(f"{op.name}.backward returned {len(in_grads)} gradients "
                                   f"for {len(inputs)} inputs")
            for t, g in zip(inputs, in_grads):
                if g is None or not t.requires_grad:
                    continue
                if type(g) is not Tensor and not isinstance(g, Tensor):
                    raise TypeError(f"{op.name}.backward must return Tensors (or None), got "
                                    f"{type(g).__name__} for an input of shape {tuple(t.shape)}")
                gd, td = g.data, t.data
                if gd.shape != td.shape:
                    raise RuntimeError(f"{op.name}.backward returned a gradient of shape "
                                       f"{tuple(g.shape)} for an input of shape {tuple(t.shape)}")
                if gd.dtype != td.dtype:  # float32 + float64: each grad keeps its dtype
                    g = g.astype(t.dtype)
                entry = grads.get(id(t))  # _accumulate, inlined: it runs once per edge
                if entry is None:
                    grads[id(t)] = [t, g]
                else:
                    entry[1] = entry[1] + g
            if not retain_graph:
                op._release()
    grads.update(kept)
    return grads


class NonScalarOutputError(RuntimeError, ValueError):
    """backward() without a grad on a non-scalar: torch's RuntimeError, and a ValueError
    (a bad shape) as opgraph's other shape errors."""


def _seed_grads(outputs, grad_outputs):
    from .tensor import Tensor, numeric_array
    seeds = []
    for out, g in zip(outputs, grad_outputs):
        if g is None:
            if out.data.size != 1:
                raise NonScalarOutputError(
                    f"backward on a non-scalar tensor of shape {tuple(out.shape)} needs a grad "
                    "argument of the same shape (the vector of the vector-Jacobian product)")
            g = Tensor._make(out.backend.full(out.shape, 1, out.dtype), out.backend)
        elif not isinstance(g, Tensor):
            host = numeric_array(g, "backward: grad must be a Tensor, a number or a numeric array")
            g = Tensor._make(out.backend.asarray(host.astype(out.dtype)), out.backend)
        if tuple(g.shape) != tuple(out.shape):
            raise ValueError(f"backward: grad of shape {tuple(g.shape)} for an output of shape "
                             f"{tuple(out.shape)}")
        if g.backend is not out.backend:
            raise ValueError(f"backward: grad lives on backend {g.backend.name}, the output on "
                             f"{out.backend.name}; move it with .to()")
        if g.data.dtype != out.data.dtype:  # as torch: the grad takes the output's dtype
            g = g.astype(out.dtype)
        seeds.append(g)
    return seeds


def backward(tensor, grad=None, retain_graph=False, create_graph=False):
    """Accumulate d tensor / d leaf into `.grad` of every leaf that requires grad."""
    if not tensor.requires_grad:
        raise RuntimeError("backward: the tensor does not require grad (no input to it "
                           "requires grad, or it was computed under no_grad)")
    from .tensor import Tensor
    seeds = _seed_grads([tensor], [grad])
    retained = [] if _retaining else None
    grads = _replay([tensor], seeds, retain_graph, create_graph, retained=retained)
    handed_out = {id(s.data) for s in seeds}  # arrays some other tensor holds
    # threads may backpropagate into one shared leaf: `.grad = .grad + g` is a
    # read-modify-write, so it runs under one lock (uncontended, it costs ~0.1 µs)
    with _set_recording(create_graph), _accumulation_lock:
        for t, g in grads.values():
            if t.op is None and t.requires_grad:
                if t.grad is not None:
                    t.grad = t.grad + g
                elif create_graph or _private(g.data, handed_out):
                    t.grad = g
                else:  # its own writable array: never a view shared with another .grad
                    t.grad = Tensor._make(t.backend.copy(g.data), t.backend)
        for t, g in retained or ():  # the op's gradient may be another tensor's: a copy
            g = g if create_graph else Tensor._make(t.backend.copy(g.data), t.backend)
            t.grad = g if t.grad is None else t.grad + g


def _private(array, handed_out):
    """True when `array` can become a .grad as it is: no other .grad or the caller's grad
    holds it, and it is not a (read-only, broadcast) view; marks it as handed out."""
    # views are visible through .base (NumPy arrays); for other array types (device
    # arrays) views cannot be told apart, so those are always copied
    if id(array) in handed_out or not hasattr(array, "base") or array.base is not None:
        return False
    if not getattr(getattr(array, "flags", None), "writeable", True):
        return False
    handed_out.add(id(array))
    return True


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def grad(output, inputs, grad_output=None, retain_graph=False, create_graph=False,
         allow_unused=None, materialize_grads=False, tape=None, *, grad_outputs=None):
    """Gradients of `output` (a tensor, or a list of them) w.r.t. `inputs` (a tensor or a
    list) as a list, leaving `.grad` alone (torch.autograd.grad). `grad_output` is the vector
    of the vector-Jacobian product (needed for a non-scalar output); torch's name for it,
    grad_outputs, works too.

    An input the output does not depend on gets zeros by default (as JAX; torch raises).
    torch's flags choose otherwise: allow_unused=True gives None for it (zeros with
    materialize_grads=True), allow_unused=False raises a RuntimeError."""
    from .tensor import Tensor
    if materialize_grads and allow_unused is False:
        raise ValueError("grad: materialize_grads=True needs allow_unused to be True or None "
                         "(as torch)")
    if grad_outputs is not None:
        if grad_output is not None:
            raise TypeError("grad: give grad_output or grad_outputs, not both")
        grad_output = grad_outputs
    outputs, inputs = _as_list(output), _as_list(inputs)
    grad_outputs = _as_list(grad_output) if grad_output is not None else [None] * len(outputs)
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad: {len(grad_outputs)} grad_output for {len(outputs)} outputs "
                         "(one per output, None for a scalar one)")
    for what, ts in (("output", outputs), ("input", inputs)):
        for i, t in enumerate(ts):
            if not isinstance(t, Tensor):
                raise TypeError(f"grad: {what} {i} is a {type(t).__name__}, not a Tensor")
    for i, t in enumerate(inputs):
        if not t.requires_grad:
            raise ValueError(f"grad: input {i} (shape {tuple(t.shape)}) does not require grad")
    roots = [o for o in outputs if o.requires_grad]
    if not roots:
        raise RuntimeError("grad: no output requires grad (none of its inputs requires grad, "
                           "or it was computed under no_grad)")
    seeds = _seed_grads(outputs, grad_outputs)
    seeds = [g for o, g in zip(outputs, seeds) if o.requires_grad]
    grads = _replay(roots, seeds, retain_graph, create_graph, tape=tape, keep=inputs)
    result = []
    for i, t in enumerate(inputs):
        entry = grads.get(id(t))
        if entry is not None:
            result.append(entry[1])
        elif allow_unused is False:
            raise RuntimeError(f"grad: input {i} (shape {tuple(t.shape)}) was not used to "
                               "compute the output; pass allow_unused=True to get None for it")
        elif allow_unused and not materialize_grads:
            result.append(None)
        else:
            result.append(Tensor._make(t.backend.zeros(t.shape, t.dtype), t.backend))
    return result
