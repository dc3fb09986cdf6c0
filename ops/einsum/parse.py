"""Parsing einsum subscripts: NumPy's grammar (string or sublist form) into a Spec.

A Spec gives every operand a tuple of labels (``...`` expanded to fresh labels,
right-aligned as in NumPy broadcasting), the output its labels, and every label its
size; a size-1 dimension whose label has size n elsewhere broadcasts.
"""
import numpy as np

_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


# =========================================================================== parsing

class _Ellipsis:
    """The label of the j-th broadcast (``...``) dimension, counted from the left of the
    widest ellipsis. Distinct from every user label."""
    __slots__ = ("j",)

    def __init__(self, j):
        self.j = j

    def __eq__(self, other):
        return isinstance(other, _Ellipsis) and other.j == self.j

    def __hash__(self):
        return hash(("...", self.j))

    def __repr__(self):
        return f"...{self.j}"


def _label_str(label, letters):
    if isinstance(label, _Ellipsis):
        return "..."
    return label if letters else repr(label)


class Spec:
    """A parsed einsum: labels of each operand, of the output, and the size of each label.

    inputs: tuple of label tuples, one per operand (``...`` expanded);
    output: tuple of labels; sizes: {label: size}; text: the subscripts as the user wrote
    them (for messages)."""

    def __init__(self, inputs, output, sizes, text):
        self.inputs, self.output, self.sizes, self.text = inputs, output, sizes, text


def _err(name, text, msg):
    return ValueError(f"{name}({text!r}): {msg}")


def _parse_string(name, subscripts, shapes):
    text = subscripts
    s = subscripts.replace(" ", "")
    for c in s:
        if not (c in _LETTERS or c in ".,->"):
            raise _err(name, text, f"invalid character {c!r} in the subscripts; only letters "
                                   "a-z A-Z, '...', ',' and '->' are allowed")
    if s.count("->") > 1 or s.count("-") != s.count("->") or s.count(">") != s.count("->"):
        raise _err(name, text, "'->' must appear at most once, and '-' and '>' only as '->'")
    explicit = "->" in s
    lhs, rhs = s.split("->") if explicit else (s, None)
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise _err(name, text, f"{len(terms)} subscript term{'s' * (len(terms) != 1)} but "
                               f"{len(shapes)} operand{'s' * (len(shapes) != 1)}")
    parsed = [_split_ellipsis(name, text, t, letters=True) for t in terms]
    out = None if rhs is None else _split_ellipsis(name, text, rhs, letters=True)
    return _finish(name, text, parsed, out, shapes, letters=True)


def _split_ellipsis(name, text, term, letters):
    """'ab...c' -> ['a', 'b', Ellipsis, 'c'] (validating the dots)."""
    if letters:
        if term.replace("...", "").count("."):
            raise _err(name, text, f"term {term!r}: '.' may only appear as a full '...'")
        pieces = term.split("...")
        if len(pieces) > 2:
            raise _err(name, text, f"term {term!r} has more than one '...'")
        out = list(pieces[0])
        if len(pieces) == 2:
            out += [Ellipsis] + list(pieces[1])
        return out
    out = list(term)
    if out.count(Ellipsis) > 1:
        raise _err(name, text, f"sublist {term!r} has more than one Ellipsis")
    for label in out:
        if label is Ellipsis:
            continue
        if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or label < 0:
            raise _err(name, text, f"sublist {term!r}: labels must be non-negative integers "
                                   f"(or Ellipsis), got {label!r}")
    return [label if label is Ellipsis else int(label) for label in out]


def _parse_sublists(name, sublists, out, shapes):
    pieces = []
    for sl in sublists + ([out] if out is not None else []):
        pieces.append("[" + ", ".join("..." if x is Ellipsis else repr(x) for x in sl) + "]")
    text = ",".join(pieces[:len(sublists)]) + ("->" + pieces[-1] if out is not None else "")
    parsed = [_split_ellipsis(name, text, list(t), letters=False) for t in sublists]
    out = None if out is None else _split_ellipsis(name, text, list(out), letters=False)
    return _finish(name, text, parsed, out, shapes, letters=False)


def _finish(name, text, parsed, out, shapes, letters):
    # expand '...' to fresh labels, right-aligned across operands
    ell_ndims = []
    for k, (term, shape) in enumerate(zip(parsed, shapes)):
        named = len(term) - term.count(Ellipsis)
        if Ellipsis in term:
            if named > len(shape):
                raise _err(name, text, f"operand {k} has {len(shape)} dims (shape "
                                       f"{tuple(shape)}) but its term names {named} plus '...'")
            ell_ndims.append(len(shape) - named)
        else:
            if named != len(shape):
                raise _err(name, text, f"operand {k} has {len(shape)} dims (shape "
                                       f"{tuple(shape)}) but its term "
                                       f"{_term_str(term, letters)!r} names {named}")
            ell_ndims.append(0)
    width = max(ell_ndims, default=0)
    inputs = []
    for term, e in zip(parsed, ell_ndims):
        labels = []
        for x in term:
            if x is Ellipsis:
                labels += [_Ellipsis(j) for j in range(width - e, width)]
            else:
                labels.append(x)
        inputs.append(tuple(labels))
    # sizes: equal, or 1 broadcasting against n (never within one operand)
    seen = {}
    for k, (labels, shape) in enumerate(zip(inputs, shapes)):
        mine = {}
        for label, n in zip(labels, shape):
            if label in mine and mine[label] != n:
                raise _err(name, text, f"operand {k} repeats index "
                                       f"{_label_str(label, letters)!r} over dims of different "
                                       f"sizes {mine[label]} and {n} (shape {tuple(shape)})")
            mine[label] = n
            seen.setdefault(label, []).append((k, n))
    sizes = {}
    for label, uses in seen.items():
        big = {n for _, n in uses if n != 1}
        if len(big) > 1:
            desc = ", ".join(f"{n} in operand {k}" for k, n in uses)
            what = ("the '...' dims" if isinstance(label, _Ellipsis)
                    else f"index {_label_str(label, letters)!r}")
            raise _err(name, text, f"operands disagree on the size of {what}: {desc}")
        sizes[label] = big.pop() if big else 1
    # output
    if out is None:
        counts = {}
        for labels in inputs:
            for label in labels:
                if not isinstance(label, _Ellipsis):
                    counts[label] = counts.get(label, 0) + 1
        once = [label for label, c in counts.items() if c == 1]
        output = tuple(_Ellipsis(j) for j in range(width)) + tuple(sorted(once, key=_sort_key))
    else:
        output = []
        for x in out:
            if x is Ellipsis:
                output += [_Ellipsis(j) for j in range(width)]
            else:
                if x not in sizes:
                    raise _err(name, text, f"output index {_label_str(x, letters)!r} appears "
                                           "in no input")
                if x in output:
                    raise _err(name, text, f"output index {_label_str(x, letters)!r} is "
                                           "repeated; each output index may appear once")
                output.append(x)
        output = tuple(output)
    return Spec(tuple(inputs), output, sizes, text)


def _sort_key(label):
    return (type(label).__name__, label)


def _term_str(term, letters):
    if letters:
        return "".join("..." if x is Ellipsis else x for x in term)
    return str(["..." if x is Ellipsis else x for x in term])


def parse(name, subscripts, shapes):
    """A Spec from string subscripts, or from (sublists, output-or-None)."""
    shapes = [tuple(int(n) for n in s) for s in shapes]
    if not shapes:
        raise ValueError(f"{name}: no operands given; expected at least one tensor")
    if isinstance(subscripts, str):
        return _parse_string(name, subscripts, shapes)
    sublists, out = subscripts
    sublists = [list(s) for s in sublists]
    if len(sublists) != len(shapes):
        raise ValueError(f"{name}: {len(sublists)} sublists but {len(shapes)} operands")
    return _parse_sublists(name, sublists, None if out is None else list(out), shapes)


def split_args(name, subscripts, operands):
    """(subscripts, operands) from either calling form:
    einsum("ij,jk->ik", a, b) or einsum(a, [0, 1], b, [1, 2], [0, 2])."""
    if isinstance(subscripts, str):
        if not operands:
            raise ValueError(f"{name}({subscripts!r}): no operands given")
        return subscripts, list(operands)
    args = [subscripts] + list(operands)
    out = args.pop() if len(args) % 2 else None
    if not args:
        raise ValueError(f"{name}: no operands given")
    ops, sublists = args[0::2], args[1::2]
    for k, sl in enumerate(sublists):
        if not _is_sublist(sl):
            raise ValueError(f"{name}: in the sublist form every operand must be followed by a "
                             f"list of integer labels; operand {k} is followed by "
                             f"{type(sl).__name__} (arguments: {_describe_args(args, out)})")
    if out is not None and not _is_sublist(out):
        raise ValueError(f"{name}: the output sublist must be a list of labels, got "
                         f"{type(out).__name__} (arguments: {_describe_args(args, out)}; "
                         "each operand needs its own sublist)")
    return (tuple(tuple(_labels(s)) for s in sublists),
            None if out is None else tuple(_labels(out))), ops


def _is_sublist(x):
    """A sequence of labels: list, tuple, range, 1-D NumPy int array (labels checked later)."""
    if isinstance(x, np.ndarray):
        return x.ndim == 1 and (x.dtype.kind in "iu" or x.size == 0)
    return isinstance(x, (list, tuple, range))


def _labels(x):
    return x.tolist() if isinstance(x, np.ndarray) else list(x)


def _describe_args(args, out):
    parts = [f"tensor{tuple(a.shape)}" if hasattr(a, "shape") and not isinstance(a, (list, tuple))
             else repr(a) for a in args + ([out] if out is not None else [])]
    return ", ".join(parts)

