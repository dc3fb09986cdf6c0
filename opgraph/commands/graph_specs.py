"""Graphs from a short text spec, for the `mis` and `spinglass` commands.

    petersen                      the Petersen graph (10 vertices, 15 edges)
    grid:4x4                      a 4 x 4 square grid (vertices numbered row by row)
    random-regular:3:20[:seed]    a random 3-regular graph on 20 vertices
    erdos-renyi:30:0.2[:seed]     G(n=30, p=0.2)
    cycle:10  path:10  complete:5 the cycle, path and complete graph
    FILE                          an edge list: one `u v` or `u v weight` per line,
                                  a lone `u` is an isolated vertex, `#` starts a comment

Vertices are integers where the spec or file allows it. Every failure is a
`GraphSpecError` (a ValueError) with a one-line message.
"""
import os

__all__ = ["GraphSpecError", "parse_graph", "read_edge_list", "SPEC_HELP"]

SPEC_HELP = ("petersen | grid:RxC | random-regular:D:N[:SEED] | erdos-renyi:N:P[:SEED] | "
             "cycle:N | path:N | complete:N | an edge-list file")


class GraphSpecError(ValueError):
    """A graph spec that names no known generator and no readable file."""


def _int(text, what, spec, minimum=0):
    try:
        value = int(text)
    except ValueError:
        raise GraphSpecError(f"graph spec {spec!r}: {what} must be an integer, got {text!r}") from None
    if value < minimum:
        raise GraphSpecError(f"graph spec {spec!r}: {what} must be at least {minimum}, got {value}")
    return value


def _arity(spec, fields, low, high, usage):
    if not low <= len(fields) <= high:
        raise GraphSpecError(f"graph spec {spec!r}: expected {usage}")


def _petersen(spec, fields):
    import networkx as nx
    _arity(spec, fields, 0, 0, "'petersen'")
    return nx.petersen_graph()


def _grid(spec, fields):
    import networkx as nx
    _arity(spec, fields, 1, 1, "'grid:RxC', e.g. grid:4x4")
    parts = fields[0].lower().split("x")
    if len(parts) != 2:
        raise GraphSpecError(f"graph spec {spec!r}: expected 'grid:RxC', e.g. grid:4x4")
    rows, cols = (_int(p, "the grid size", spec, 1) for p in parts)
    g = nx.Graph()
    for i in range(rows):
        for j in range(cols):
            g.add_node(i * cols + j, pos=(j, -i))
    for i in range(rows):
        for j in range(cols):
            if j + 1 < cols:
                g.add_edge(i * cols + j, i * cols + j + 1)
            if i + 1 < rows:
                g.add_edge(i * cols + j, (i + 1) * cols + j)
    return g


def _random_regular(spec, fields):
    import networkx as nx
    _arity(spec, fields, 2, 3, "'random-regular:D:N[:SEED]', e.g. random-regular:3:20:1")
    d = _int(fields[0], "the degree D", spec)
    n = _int(fields[1], "the vertex count N", spec)
    seed = _int(fields[2], "the seed", spec) if len(fields) == 3 else 0
    if d >= n or (n * d) % 2:
        raise GraphSpecError(f"graph spec {spec!r}: no {d}-regular graph on {n} vertices "
                             f"(need D < N and D*N even)")
    return nx.random_regular_graph(d, n, seed=seed)


def _erdos_renyi(spec, fields):
    import networkx as nx
    _arity(spec, fields, 2, 3, "'erdos-renyi:N:P[:SEED]', e.g. erdos-renyi:30:0.2:1")
    n = _int(fields[0], "the vertex count N", spec)
    try:
        p = float(fields[1])
    except ValueError:
        raise GraphSpecError(f"graph spec {spec!r}: the edge probability P must be a number, "
                             f"got {fields[1]!r}") from None
    if not 0.0 <= p <= 1.0:
        raise GraphSpecError(f"graph spec {spec!r}: the edge probability P must lie in [0, 1], got {p}")
    seed = _int(fields[2], "the seed", spec) if len(fields) == 3 else 0
    return nx.gnp_random_graph(n, p, seed=seed)


def _simple(make, minimum):
    def build(spec, fields):
        name = spec.split(":")[0]
        _arity(spec, fields, 1, 1, f"'{name}:N', e.g. {name}:6")
        return make(_int(fields[0], "the vertex count N", spec, minimum))
    return build


def _cycle(n):
    import networkx as nx
    return nx.cycle_graph(n)


def _path(n):
    import networkx as nx
    return nx.path_graph(n)


def _complete(n):
    import networkx as nx
    return nx.complete_graph(n)


GENERATORS = {
    "petersen": _petersen,
    "grid": _grid,
    "random-regular": _random_regular,
    "erdos-renyi": _erdos_renyi,
    "cycle": _simple(_cycle, 3),
    "path": _simple(_path, 1),
    "complete": _simple(_complete, 1),
}


def _node(token):
    try:
        return int(token)
    except ValueError:
        return token


def read_edge_list(path):
    """A graph from an edge-list file: `u v` or `u v weight` per line (the weight
    becomes the edge attribute 'weight'), a lone `u` adds an isolated vertex."""
    import networkx as nx
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.readlines()
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else type(e).__name__
        raise GraphSpecError(f"cannot read edge-list file {path!r}: {reason}") from None
    g = nx.Graph()
    seen = {}   # edge -> (weight, line): an edge given twice must agree (no "last wins")

    def add(u, v, weight, number):
        key = frozenset((u, v))
        given, weight = weight, 1.0 if weight is None else weight   # no weight: 1
        if key in seen and seen[key][0] != weight:
            raise GraphSpecError(f"{path}:{number}: edge {u} {v} has weight {weight:g} here but "
                                 f"{seen[key][0]:g} on line {seen[key][1]} (an edge is listed "
                                 f"once, or again with the same weight)")
        seen.setdefault(key, (weight, number))
        if given is None:
            g.add_edge(u, v)
        else:
            g.add_edge(u, v, weight=weight)

    for number, line in enumerate(lines, 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) == 1:
            g.add_node(_node(fields[0]))
        elif len(fields) == 2:
            add(_node(fields[0]), _node(fields[1]), None, number)
        elif len(fields) == 3:
            try:
                weight = float(fields[2])
            except ValueError:
                raise GraphSpecError(f"{path}:{number}: the weight {fields[2]!r} is not a number") from None
            add(_node(fields[0]), _node(fields[1]), weight, number)
        else:
            raise GraphSpecError(f"{path}:{number}: expected 'u v' or 'u v weight', got {line.strip()!r}")
    return g


def parse_graph(spec):
    """A networkx graph from a spec (see the module docstring) or an edge-list file."""
    spec = spec.strip()
    name, *fields = spec.split(":")
    if name.lower() in GENERATORS and not os.path.isfile(spec):
        return GENERATORS[name.lower()](spec, fields)
    if os.path.exists(spec):
        if os.path.isdir(spec):
            raise GraphSpecError(f"cannot read edge-list file {spec!r}: it is a directory")
        return read_edge_list(spec)
    raise GraphSpecError(f"unknown graph spec {spec!r} and no such file (expected {SPEC_HELP})")
