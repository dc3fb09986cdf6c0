"""Operation: the unit of the graph. Subclass it to write an op.

    class Square(Operation):
        '''y = x²;  dx = 2·x·dy'''
        def forward(self, x):
            return self.backend.binary("mul", x, x)
        def backward(self, grad):
            (x,) = self.inputs
            return (grad * 2 * x,)

`forward` receives and returns backend arrays; `backward` receives the output
gradient as a Tensor and returns one Tensor (or None) per input, written with
opgraph's own functions so that it is itself differentiable.
"""
import itertools
import weakref

from . import tape as _tape
from opgraph.backends.base import IndexOutOfRange
from .tensor import Tensor, as_floating, as_tensors, get_default_backend

_sequence = itertools.count()
_recording = _tape._state  # this thread's recording flag and tape stack
_KEPT_AFTER_RELEASE = ("_seq", "_tape", "_output", "backend")
_make = Tensor._make


class Operation:
    once_differentiable = False  # True when backward calls a raw kernel (no double backward)
    promote = False  # arithmetic: integer inputs meeting a float input take its dtype
    floating = False  # a real-valued result (exp, /, mean): integer and bool inputs become floats
    wraps = False  # + - *: a Python int past an integer input's range wraps into it (as torch)
    backend = None
    _inputs = ()
    _released = False
    _tape = None

    @property
    def name(self):
        return type(self).__name__

    def forward(self, *arrays):
        raise NotImplementedError(f"{self.name}.forward")

    def backward(self, grad_output):
        raise NotImplementedError(f"{self.name}.backward")

    @property
    def inputs(self):
        return self._inputs

    @property
    def output(self):
        return self._output()

    @property
    def outputs(self):
        return (self._output(),)

    def _backward_all(self, grads):
        result = self.backward(grads[0])
        if isinstance(result, tuple):
            return result
        if result is None or isinstance(result, Tensor):  # one gradient, as torch allows
            if len(self._inputs) == 1:
                return (result,)
            raise TypeError(f"{self.name}.backward must return a tuple with one Tensor (or "
                            f"None) per input ({len(self._inputs)} inputs), got "
                            f"{type(result).__name__}")
        try:
            return tuple(result)  # a list, a generator
        except TypeError:
            raise TypeError(f"{self.name}.backward must return a tuple with one Tensor (or "
                            f"None) per input, got {type(result).__name__}") from None

    def __call__(self, *inputs):
        inputs = as_tensors(self, inputs, self.promote)
        if self.floating:
            inputs = as_floating(inputs)
        self.backend = inputs[0].backend if inputs else get_default_backend()
        try:
            if len(inputs) == 1:  # the common arities without building a list
                result = self.forward(inputs[0].data)
            elif len(inputs) == 2:
                result = self.forward(inputs[0].data, inputs[1].data)
            else:
                result = self.forward(*[t.data for t in inputs])
        except IndexOutOfRange as e:  # a kernel's index check, reported by this op
            raise e.renamed(self.name) from None
        try:
            return self._wrap(result, inputs)
        except AttributeError:  # a user-defined forward that returned something else
            if isinstance(result, tuple) or self.backend.is_array(result):
                raise
            raise TypeError(f"{self.name}.forward must return an array of the "
                            f"{self.backend.name} backend, got {type(result).__name__}") from None

    def _needs_grad(self, inputs):
        if _recording.recording:
            for t in inputs:
                if t.requires_grad:
                    return True
        return False

    def _wrap(self, array, inputs):
        if _recording.recording and array.dtype.kind == "f":
            for t in inputs:
                if t.requires_grad:
                    out = _make(array, self.backend, True, self)
                    self._record(inputs)
                    self._output = weakref.ref(out)
                    return out
        return _make(array, self.backend)

    def _record(self, inputs):
        if self._tape is not None:
            raise RuntimeError(f"{self.name}: this op instance was already applied and recorded; "
                               "create a new instance for each call (it saves what its backward "
                               "needs on itself)")
        self._inputs = inputs
        self._seq = next(_sequence)
        self._tape = tape = _recording.tapes[-1]
        tape.record(self)

    def _release(self):
        """Drop what forward saved (and the inputs) once backward has used them."""
        saved = self.__dict__
        self.__dict__ = {key: saved[key] for key in _KEPT_AFTER_RELEASE if key in saved}
        self._released = True

    def constant(self, array):
        """A backend array as a Tensor that needs no gradient (masks, one-hots, indices)."""
        return Tensor._make(array, self.backend)

    def __repr__(self):
        return f"<{self.name}>"


class MultiOutputOperation(Operation):
    """An op with several outputs (Chunk): forward returns a tuple of arrays,
    backward_multi receives one gradient per output, None for unused outputs."""

    def backward_multi(self, grad_outputs):
        raise NotImplementedError(f"{self.name}.backward_multi")

    def backward(self, grad_output):
        return self.backward_multi((grad_output,))

    @property
    def output(self):
        raise AttributeError(f"{self.name} has several outputs: use .outputs")

    @property
    def outputs(self):
        return tuple(ref() for ref in self._output)

    def _backward_all(self, grads):
        return tuple(self.backward_multi(tuple(grads)))

    def _wrap(self, arrays, inputs):
        if self._needs_grad(inputs):
            outs = tuple(Tensor._make(a, self.backend, True, self) for a in arrays)
            self._record(inputs)
            self._output = tuple(weakref.ref(t) for t in outs)
            return outs
        return tuple(Tensor._make(a, self.backend) for a in arrays)
