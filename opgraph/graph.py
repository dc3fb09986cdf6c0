"""Seeing the graph: what the tape recorded, as a networkx DiGraph, Graphviz
text, or a picture.

    y = (x * w).sum()
    g = opgraph.graph.to_networkx(y, params={"x": x, "w": w})
    print(opgraph.graph.to_dot(y))               # paste into any Graphviz viewer
    opgraph.graph.draw(y, "graph.png")           # needs matplotlib (extra `plot`)

The graph is built from what the forward pass left behind: `tensor.op` (the
op that made a tensor) and `op.inputs`, or the ops of a Tape (`tape.ops`).
Build it before `backward()` (which releases the graph) or backpropagate with
`retain_graph=True`.

Nodes are strings: "t0", "t1", ... for tensors and "op0", "op1", ... for ops,
numbered in the order the ops ran. Every node has the attributes
`kind` ("tensor" or "op"), `op` (the op's name; for a tensor, the name of the
op that made it or None for a leaf), `shape`, `dtype`, `requires_grad`,
`name` (the parameter name from `params`, else "") and `label` (the text
drawn). Op nodes also have `input_shapes` and `output_shapes`.
Edges go input tensor -> op -> output tensor.

With `backward=True` the graph shows the gradient flow instead: the same
nodes restricted to what requires grad, edges reversed, tensors labelled
"grad <name>" and ops "<Op>Backward".
"""
from .tape import Tape, recorded_ops
from .tensor import Tensor

__all__ = ["to_networkx", "to_dot", "draw"]


def _collect_ops(roots):
    """Ops the root tensors depend on."""
    return recorded_ops(roots, lambda op: (
        f"graph: {op.name} was released by an earlier backward(); build the graph "
        "before calling backward, or call backward(retain_graph=True)"))


def _shape_text(shape):
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def to_networkx(obj, params=None, backward=False):
    """A networkx.DiGraph of the tensors and ops behind `obj`: a Tensor, a list
    of Tensors, or a Tape. `params` ({name: Tensor}, e.g.
    `dict(model.named_parameters())`) names leaf tensors in the labels."""
    import networkx as nx
    names = {id(t): name for name, t in (params or {}).items()}
    if isinstance(obj, Tape):
        ops, roots = obj.ops, []
    elif isinstance(obj, Tensor):
        roots = [obj]
        ops = _collect_ops(roots)
    elif isinstance(obj, (list, tuple)) and all(isinstance(t, Tensor) for t in obj):
        roots = list(obj)
        ops = _collect_ops(roots)
    else:
        raise TypeError(f"to_networkx: expected a Tensor, a list of Tensors or a Tape, got "
                        f"{type(obj).__name__}")
    ops = sorted(ops, key=lambda op: op._seq)
    g = nx.DiGraph()
    tensor_ids = {}

    def tensor_node(t):
        key = id(t)
        if key not in tensor_ids:
            node = tensor_ids[key] = f"t{len(tensor_ids)}"
            name = names.get(key, "")
            dtype = str(t.dtype)
            label = (f"{name}\n" if name else "") + f"{_shape_text(t.shape)} {dtype}"
            g.add_node(node, kind="tensor", op=t.op.name if t.op is not None else None,
                       shape=tuple(t.shape), dtype=dtype, requires_grad=bool(t.requires_grad),
                       name=name, label=label)
        return tensor_ids[key]

    for i, op in enumerate(ops):
        op_node = f"op{i}"
        outs = [t for t in op.outputs if t is not None]
        in_nodes = [tensor_node(t) for t in op.inputs]
        g.add_node(op_node, kind="op", op=op.name, name="", label=op.name,
                   shape=tuple(outs[0].shape) if len(outs) == 1 else tuple(t.shape for t in outs),
                   dtype=str(outs[0].dtype) if outs else "",
                   requires_grad=True,
                   input_shapes=[tuple(t.shape) for t in op.inputs],
                   output_shapes=[tuple(t.shape) for t in outs])
        for n in in_nodes:
            g.add_edge(n, op_node)
        for t in outs:
            g.add_edge(op_node, tensor_node(t))
    for t in roots:
        tensor_node(t)
    if backward:
        return _backward_view(g)
    return g


def _backward_view(g):
    keep = [n for n, d in g.nodes(data=True) if d["requires_grad"]]
    b = g.subgraph(keep).reverse(copy=True)
    for n, d in b.nodes(data=True):
        if d["kind"] == "op":
            d["label"] = f"{d['op']}Backward"
        else:
            what = f"grad {d['name']}" if d["name"] else "grad"
            d["label"] = f"{what}\n{_shape_text(d['shape'])} {d['dtype']}"
    b.graph["backward"] = True
    return b


def _as_graph(obj, params, backward):
    import networkx as nx
    if isinstance(obj, nx.DiGraph):
        return obj
    return to_networkx(obj, params=params, backward=backward)


def _dot_escape(text):
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def to_dot(obj, params=None, backward=False, name="opgraph"):
    """Graphviz DOT text of the graph (of a Tensor, a Tape, or a DiGraph from
    to_networkx). Render it with `dot -Tpng` or any online viewer; nothing
    here needs Graphviz."""
    g = _as_graph(obj, params, backward)
    lines = [f'digraph "{_dot_escape(name)}" {{', "  rankdir=TB;",
             '  node [fontname="Helvetica", fontsize=10];']
    for n, d in g.nodes(data=True):
        if d["kind"] == "op":
            style = 'shape=box, style="rounded,filled", fillcolor="#fde68a"'
        elif d.get("op") is None and d["requires_grad"]:
            style = 'shape=ellipse, style=filled, fillcolor="#bfdbfe"'   # a parameter / leaf
        else:
            style = 'shape=ellipse, style=filled, fillcolor="#e5e7eb"'
        lines.append(f'  {n} [label="{_dot_escape(d["label"])}", {style}];')
    for u, v in g.edges():
        lines.append(f"  {u} -> {v};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _layout(g):
    """Rows top to bottom by depth (longest path from a source); each source
    (a leaf tensor, a parameter) sits in the row just above its first consumer.
    No Graphviz needed."""
    import networkx as nx
    depth = {}
    for n in nx.topological_sort(g):
        preds = list(g.predecessors(n))
        depth[n] = 1 + max(depth[p] for p in preds) if preds else 0
    for n in g.nodes:
        succs = list(g.successors(n))
        if not list(g.predecessors(n)) and succs:
            depth[n] = min(depth[s] for s in succs) - 1
    shift = -min(depth.values(), default=0)
    rows = {}
    for n in g.nodes:
        rows.setdefault(depth[n] + shift, []).append(n)
    pos = {}
    for d, row in rows.items():
        row.sort(key=lambda n: (g.in_degree(n) == 0, int(n.lstrip("top") or 0)))
        for i, n in enumerate(row):
            pos[n] = (i - (len(row) - 1) / 2, -d)
    return pos


def draw(obj, path, params=None, backward=False, title=None):
    """Draw the graph to an image file (PNG, SVG, PDF: from the extension of
    `path`) with matplotlib. Returns the DiGraph drawn."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("opgraph.graph.draw needs matplotlib: pip install 'opgraph[plot]' "
                          "(or use to_dot for Graphviz text)") from None
    g = _as_graph(obj, params, backward)
    pos = _layout(g)
    depth = 1 + max((-y for _, y in pos.values()), default=0)
    width = max((sum(1 for p in pos.values() if p[1] == y) for y in {p[1] for p in pos.values()}),
                default=1)
    fig = Figure(figsize=(max(4.0, 2.8 * width), max(3.0, 0.9 * depth)))
    ax = fig.add_subplot(1, 1, 1)
    ax.set_axis_off()
    for u, v in g.edges():
        (x0, y0), (x1, y1) = pos[u], pos[v]
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                    arrowprops=dict(arrowstyle="-|>", color="#6b7280", lw=0.8,
                                    shrinkA=12, shrinkB=12))
    for n, d in g.nodes(data=True):
        x, y = pos[n]
        if d["kind"] == "op":
            box = dict(boxstyle="round,pad=0.3", fc="#fde68a", ec="#92400e")
        elif d.get("op") is None and d["requires_grad"]:
            box = dict(boxstyle="ellipse,pad=0.2", fc="#bfdbfe", ec="#1e3a8a")
        else:
            box = dict(boxstyle="ellipse,pad=0.2", fc="#e5e7eb", ec="#374151")
        ax.text(x, y, d["label"], ha="center", va="center", fontsize=7, bbox=box)
    if pos:
        xs = [p[0] for p in pos.values()]
        ax.set_xlim(min(xs) - 0.8, max(xs) + 0.8)
        ax.set_ylim(-depth + 0.4, 0.6)
    if title:
        ax.set_title(title)
    fig.savefig(path, bbox_inches="tight", dpi=120)
    return g
