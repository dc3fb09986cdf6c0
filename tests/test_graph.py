"""opgraph.graph: networkx / Graphviz / matplotlib views of what the tape recorded."""
import networkx as nx
import numpy as np
import pytest

import opgraph
from opgraph import graph, nn


def _small():
    x = opgraph.tensor([[1.0, 2.0]], requires_grad=True)
    w = opgraph.tensor([[3.0], [4.0]], requires_grad=True)
    c = opgraph.tensor([[0.5]])                         # a constant: no grad
    y = (x @ w + c).relu().sum()
    return x, w, c, y


def _ops(g):
    return [d["op"] for n, d in sorted(g.nodes(data=True), key=lambda nd: nd[0])
            if d["kind"] == "op"]


def test_to_networkx_of_a_tensor():
    x, w, c, y = _small()
    g = graph.to_networkx(y, params={"x": x, "w": w})
    assert isinstance(g, nx.DiGraph) and nx.is_directed_acyclic_graph(g)
    ops = {n: d for n, d in g.nodes(data=True) if d["kind"] == "op"}
    tensors = {n: d for n, d in g.nodes(data=True) if d["kind"] == "tensor"}
    assert [ops[f"op{i}"]["op"] for i in range(4)] == ["MatMul", "Add", "ReLU", "SumDim"]
    assert len(tensors) == 3 + 4           # x, w, c and one output per op
    by_name = {d["name"]: n for n, d in tensors.items() if d["name"]}
    assert set(by_name) == {"x", "w"}
    assert g.nodes[by_name["x"]]["shape"] == (1, 2)
    assert g.nodes[by_name["x"]]["dtype"] == "float32"
    assert g.nodes[by_name["x"]]["requires_grad"] and g.nodes[by_name["x"]]["op"] is None
    assert list(g.successors(by_name["x"])) == ["op0"] and list(g.successors(by_name["w"])) == ["op0"]
    assert ops["op0"]["input_shapes"] == [(1, 2), (2, 1)] and ops["op0"]["output_shapes"] == [(1, 1)]
    const = [n for n, d in tensors.items() if not d["requires_grad"]]
    assert len(const) == 1 and list(g.successors(const[0])) == ["op1"]
    root = [n for n, d in tensors.items() if d["op"] == "SumDim"][0]
    assert g.out_degree(root) == 0 and g.nodes[root]["shape"] == ()
    # each op: inputs in, one output out
    for n in ops:
        assert g.out_degree(n) == 1


def test_a_tensor_used_twice_is_one_node():
    x = opgraph.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    g = graph.to_networkx(y)
    assert g.number_of_nodes() == 5   # x, Mul, x*x, SumDim, y
    xs = [n for n, d in g.nodes(data=True) if d["kind"] == "tensor" and d["op"] is None]
    assert len(xs) == 1 and list(g.successors(xs[0])) == ["op0"]


def test_to_networkx_of_a_tape_and_of_several_outputs():
    with opgraph.Tape() as tape:
        a = opgraph.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
        p, q = opgraph.chunk(a, 2)
        u = (p * 2).sum()
        v = q.exp().sum()
    g = graph.to_networkx(tape)
    names = sorted(d["op"] for _, d in g.nodes(data=True) if d["kind"] == "op")
    assert len(names) == len(tape.ops) == 5
    assert names.count("SumDim") == 2 and "Exp" in names
    chunk_node = [n for n, d in g.nodes(data=True) if d["kind"] == "op" and d["op"] == names[0]
                  and g.out_degree(n) == 2]
    assert chunk_node, "the multi-output op has an edge to each output"
    g2 = graph.to_networkx([u, v])
    assert sorted(d["op"] for _, d in g2.nodes(data=True) if d["kind"] == "op") == names
    # only what u depends on
    g3 = graph.to_networkx(u)
    assert "Exp" not in [d["op"] for _, d in g3.nodes(data=True)]


def test_a_leaf_alone_and_bad_input():
    g = graph.to_networkx(opgraph.ones(2, requires_grad=True))
    assert list(g.nodes) == ["t0"]
    with pytest.raises(TypeError, match="expected a Tensor, a list of Tensors or a Tape"):
        graph.to_networkx("y")


def test_the_graph_is_gone_after_backward_unless_retained():
    x, w, c, y = _small()
    y.backward(retain_graph=True)
    assert graph.to_networkx(y).number_of_nodes() == 11
    y.backward()
    with pytest.raises(RuntimeError, match="released by an earlier backward.*retain_graph=True"):
        graph.to_networkx(y)


def test_backward_view_reverses_what_needs_grad():
    x, w, c, y = _small()
    fwd = graph.to_networkx(y, params={"x": x, "w": w})
    bwd = graph.to_networkx(y, params={"x": x, "w": w}, backward=True)
    assert bwd.graph["backward"]
    assert bwd.number_of_nodes() == fwd.number_of_nodes() - 1     # the constant is gone
    for u, v in bwd.edges:
        assert fwd.has_edge(v, u)
    labels = {d["label"] for _, d in bwd.nodes(data=True)}
    assert {"MatMulBackward", "AddBackward", "ReLUBackward", "SumDimBackward"} <= labels
    assert any(lbl.startswith("grad x") for lbl in labels)
    x_node = [n for n, d in bwd.nodes(data=True) if d["name"] == "x"][0]
    assert bwd.out_degree(x_node) == 0 and list(bwd.predecessors(x_node)) == ["op0"]


def test_to_dot_is_graphviz_text():
    x, w, c, y = _small()
    text = graph.to_dot(y, params={'my "x"': x})
    assert text.startswith('digraph "opgraph" {') and text.rstrip().endswith("}")
    g = graph.to_networkx(y)
    for n in g.nodes:
        assert f"  {n} [label=" in text
    for u, v in g.edges:
        assert f"  {u} -> {v};" in text
    assert 'my \\"x\\"\\n(1, 2) float32' in text       # quotes and newlines escaped
    assert text.count("->") == g.number_of_edges()
    assert graph.to_dot(g) == graph.to_dot(y)          # a DiGraph works too
    assert "MatMulBackward" in graph.to_dot(y, backward=True)


def test_draw_writes_images(tmp_path):
    pytest.importorskip("matplotlib")
    nn.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    loss = model(opgraph.ones(2, 4)).sum()
    g = graph.draw(loss, tmp_path / "g.png", params=dict(model.named_parameters()))
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert g.number_of_nodes() > 0
    graph.draw(loss, tmp_path / "g.svg", backward=True, title="gradients")
    assert b"<svg" in (tmp_path / "g.svg").read_bytes()[:500]


def test_tape_print_lists_each_op_with_shapes(capsys):
    with opgraph.Tape() as tape:
        a = opgraph.ones(2, 3, requires_grad=True)
        out = (a @ opgraph.ones(3, 4)).sum()   # the tape holds ops as long as `out` lives
    tape.print()
    lines = capsys.readouterr().out.splitlines()
    assert out.requires_grad and lines[0] == "Tape with 2 ops:"
    assert "MatMul" in lines[1] and "(2, 3), (3, 4)" in lines[1] and "-> (2, 4)" in lines[1]
    assert "SumDim" in lines[2] and "-> ()" in lines[2]
    assert str(tape) == "\n".join(lines)
    out.backward()  # the replay releases what it used, and the view says why it is empty
    assert str(tape).startswith("Tape with 0 ops (not listed: ops released by backward")
    assert repr(tape) == "<Tape: 0 ops>"


def test_graph_of_a_cnn_has_every_parameter():
    nn.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(8, 3))
    loss = nn.CrossEntropyLoss()(model(opgraph.ones(1, 1, 4, 4)), opgraph.tensor([1]))
    params = dict(model.named_parameters())
    g = graph.to_networkx(loss, params=params)
    named = {d["name"] for _, d in g.nodes(data=True) if d["name"]}
    assert named == set(params)
    ops = [d["op"] for _, d in g.nodes(data=True) if d["kind"] == "op"]
    assert ops.count("Conv2D") == 1 and ops.count("MaxPool2D") == 1
    assert np.isfinite(loss.item())


def test_draw_without_matplotlib_says_how_to_get_it(monkeypatch, tmp_path):
    import sys
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)   # import fails
    x = opgraph.ones(2, requires_grad=True)
    with pytest.raises(ImportError, match=r"pip install 'opgraph\[plot\]'"):
        graph.draw((x * 2).sum(), tmp_path / "g.png")
    assert not (tmp_path / "g.png").exists()
