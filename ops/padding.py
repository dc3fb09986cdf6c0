"""Constant padding (negative amounts crop), from backend cat and slicing."""
from opgraph.operation import Operation

from .shape import Index


def pad_array(backend, x, pads, value=0.0):
    """x with pads[d] = (before, after) elements of `value` added on each side of dim d
    (negative: that many removed); dims without an entry are left alone."""
    b = backend
    crop = tuple(slice(max(-lo, 0), x.shape[d] - max(-hi, 0)) for d, (lo, hi) in enumerate(pads))
    if any(lo < 0 or hi < 0 for lo, hi in pads):
        x = b.getitem(x, crop)
    for d, (lo, hi) in enumerate(pads):
        lo, hi = max(lo, 0), max(hi, 0)
        if not lo and not hi:
            continue
        parts = []
        for n in (lo, hi):
            shape = tuple(x.shape[:d]) + (n,) + tuple(x.shape[d + 1:])
            parts.append(b.full(shape, value, x.dtype) if n else None)
        x = b.cat([p for p in (parts[0], x, parts[1]) if p is not None], d)
    return x


def pad_key(shape, pads):
    """The slice of the padded array that holds the original (cropped) data."""
    return tuple(slice(max(lo, 0), max(lo, 0) + n - max(-lo, 0) - max(-hi, 0))
                 for n, (lo, hi) in zip(shape, pads))


class ConstantPad(Operation):
    """y = x with pads[d] = (before, after) constant entries added to dim d (negative amounts
    crop), y[key] = x (cropped) and `value` elsewhere;  dx = dy[key] (zeros where cropped)"""
    saves = ()

    def __init__(self, pads, value=0.0):
        self.pads, self.value = tuple((int(lo), int(hi)) for lo, hi in pads), value

    def forward(self, x):
        if len(self.pads) > len(x.shape):
            raise ValueError(f"{self.name}: {len(self.pads)} dims of padding for an input of "
                             f"shape {tuple(x.shape)}")
        pads = ((0, 0),) * (len(x.shape) - len(self.pads)) + self.pads
        for n, (lo, hi) in zip(x.shape, pads):
            if n + lo + hi < 0:
                raise ValueError(f"{self.name}: padding {self.pads} leaves a negative size for "
                                 f"an input of shape {tuple(x.shape)}")
        self.full_pads, self.in_shape = pads, tuple(x.shape)
        return pad_array(self.backend, x, pads, self.value)

    def backward(self, grad):
        inner = Index(pad_key(self.in_shape, self.full_pads))(grad)
        crop = [(max(-lo, 0), max(-hi, 0)) for lo, hi in self.full_pads]
        if any(lo or hi for lo, hi in crop):  # cropped entries get no gradient: pad zeros back
            inner = ConstantPad(crop, 0.0)(inner)
        return (inner,)
