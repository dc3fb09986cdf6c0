"""Version counters: which memory was written in place, and when.

An op keeps the tensors its backward reads (its inputs, maybe its output). An in-place
write (`x.add_(1)`, `x[0] = 2`, `x.copy_(y)`) changes that data under the op, and its
gradient would silently be wrong. So every in-place write stamps the *storage* it wrote
(the memory, which views and `detach()` share with their base: `backend.storage`) with
the op sequence number of the write, and counts the writes (`Tensor._version`). Before
an op's backward runs, the replay calls `check_saved(op)` if any write happened after the
op was recorded; it raises torch's "modified by an inplace operation" error when a
tensor the op reads was written since.

Nothing is recorded per op in the forward pass: the check costs one comparison per op
unless an in-place write happened after the op ran. Which tensors an op reads is its
`saves` attribute: None (the default, for ops that do not say) means every input and the
output; otherwise a tuple of input positions, "output", and names of attributes holding
backend arrays the op kept (Where's condition).
"""
import weakref

_stamps = {}  # id(storage) -> [weakref to the storage, sequence number of the last write, count]
last_write = [-1]  # sequence number of the latest in-place write anywhere


def _forget(key, ref):
    entry = _stamps.get(key)
    if entry is not None and entry[0] is ref:
        del _stamps[key]


def _entry(backend, array):
    store = backend.storage(array)
    entry = _stamps.get(id(store))
    if entry is not None and entry[0]() is store:
        return entry, store
    return None, store


def mark_written(backend, array, seq):
    """Record an in-place write of `array`'s storage at sequence number `seq`."""
    entry, store = _entry(backend, array)
    if entry is None:
        key = id(store)
        try:
            ref = weakref.ref(store, lambda r, key=key: _forget(key, r))
        except TypeError:  # storage without weak references: nothing can alias it
            return
        entry = _stamps[key] = [ref, seq, 0]
    entry[1] = max(entry[1], seq)
    entry[2] += 1
    if seq > last_write[0]:
        last_write[0] = seq


def written_at(backend, array):
    """Sequence number of the last in-place write of `array`'s storage (-1: never)."""
    entry, _ = _entry(backend, array)
    return -1 if entry is None else entry[1]


def version(tensor):
    """How many in-place writes `tensor`'s storage has seen (torch's `x._version`)."""
    entry, _ = _entry(tensor.backend, tensor.data)
    return 0 if entry is None else entry[2]


def saved_tensors(op):
    """(description, backend, array) for each array the backward of `op` reads: its
    inputs' and output's data, and arrays the op kept as attributes (a mask)."""
    spec = getattr(op, "saves", None)
    inputs = op._inputs
    if spec is None:
        spec = tuple(range(len(inputs))) + ("output",)
    for s in spec:
        if s == "output":
            outs = op.outputs
            for k, out in enumerate(outs):
                if out is not None:
                    yield ("output" if len(outs) == 1 else f"output {k}"), out
        elif isinstance(s, str):
            array = getattr(op, s, None)
            if array is not None:
                yield f"its saved {s}", _Array(op.backend, array)
        elif s < len(inputs):
            yield f"input {s}", inputs[s]


class _Array:
    """A saved backend array seen as a tensor (for the check and its message)."""

    def __init__(self, backend, data):
        self.backend, self.data = backend, data
        self.shape, self.dtype = tuple(data.shape), data.dtype


def check_saved(op):
    """Raise RuntimeError if a tensor that `op`'s backward reads was written in place
    after `op` was recorded."""
    for what, t in saved_tensors(op):
        if written_at(t.backend, t.data) > op._seq:
            entry, _ = _entry(t.backend, t.data)
            raise RuntimeError(
                f"{op.name}: one of the variables needed for gradient computation has been "
                f"modified by an inplace operation: {what} of {op.name} (shape "
                f"{tuple(t.shape)}, dtype {t.dtype}) was written in place after {op.name} saved "
                f"it for backward (it is at version {entry[2]}). Clone it before the in-place "
                "update (x.clone()), or update it out of place (x = x + ...).")
