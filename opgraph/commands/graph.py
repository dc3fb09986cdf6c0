"""`python -m opgraph graph`: draw the forward graph of a model (or, with
--backward, the gradient flow) as a PNG/SVG, or as Graphviz text (.dot)."""
import os


def add_arguments(parser):
    from opgraph import models
    parser.add_argument("--model", choices=models.names(), default="cnn",
                        help="the model of `python -m opgraph train` (default: %(default)s)")
    parser.add_argument("--out", default="graph.png", metavar="PATH",
                        help="output file: .png, .svg or .pdf (matplotlib), or .dot / .gv "
                             "for Graphviz text (default: %(default)s)")
    parser.add_argument("--backward", action="store_true",
                        help="draw the gradient flow (the reversed graph of what needs grad)")
    parser.add_argument("--batch-size", type=int, default=2,
                        help="batch size of the example input (default: %(default)s)")


DOT = ("dot", "gv")


def check_arguments(args):
    """The output path and the batch size, before anything is built (UsageError)."""
    from ._cli import UsageError, extension, matplotlib_formats, number, output_path
    number(args.batch_size, "--batch-size", minimum=1, integer=True)
    output_path(args.out, "--out", what="the graph")
    if extension(args.out) in DOT:
        return args.out
    try:
        formats = matplotlib_formats("--out")
    except UsageError:
        raise UsageError(f"drawing {args.out!r} needs matplotlib, which is not installed: "
                         "pip install 'opgraph[plot]' (or write Graphviz text with --out "
                         "graph.dot)") from None
    return output_path(args.out, "--out", DOT + tuple(formats), what="the graph")


def run(args):
    import opgraph
    from opgraph import graph, models, nn
    from opgraph.data import load_digits

    check_arguments(args)
    is_dot = os.path.splitext(args.out)[1].lower() in (".dot", ".gv")
    (x, y), _ = load_digits()
    nn.manual_seed(0)
    model = models.build(args.model, x.shape[1:])
    params = {name: p for name, p in model.named_parameters()}
    with opgraph.Tape() as tape:
        inputs, targets = opgraph.tensor(x[:args.batch_size]), opgraph.tensor(y[:args.batch_size])
        loss = nn.CrossEntropyLoss()(model(inputs), targets)
    params.update(input=inputs, targets=targets)
    g = graph.to_networkx(loss, params=params, backward=args.backward)
    n_ops = sum(1 for _, d in g.nodes(data=True) if d["kind"] == "op")
    n_tensors = g.number_of_nodes() - n_ops
    title = f"{args.model.upper()} {'backward (gradient flow)' if args.backward else 'forward'}"
    if is_dot:
        with open(args.out, "w") as f:
            f.write(graph.to_dot(g, name=title))
    else:
        graph.draw(g, args.out, title=title)
    print(f"{title}: {n_ops} ops, {n_tensors} tensors -> {args.out}")
    tape.print()
    return 0
