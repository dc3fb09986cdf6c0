"""`python -m opgraph demo`: a small graph, run forward and backward; prints the
values, the gradients and what the tape recorded."""
import sys
def add_arguments(parser):
    parser.add_argument("--backend", choices=["numpy", "numba", "cuda"], default=None,
                        help="backend to run on (default: the default backend, numpy)")


def run(args):
    import opgraph

    if args.backend is not None:
        try:
            opgraph.set_default_backend(args.backend)
        except (RuntimeError, ImportError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    with opgraph.Tape() as tape:
        x = opgraph.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
        w = opgraph.tensor([[0.5], [-1.0]], requires_grad=True)
        b = opgraph.tensor([0.25], requires_grad=True)
        h = opgraph.tanh(x @ w + b)          # (2, 1)
        loss = (h * h).sum()
    print("x =", x)
    print("w =", w)
    print("b =", b)
    print("loss = sum(tanh(x @ w + b) ** 2) =", f"{loss.item():.6f}")
    print()
    print("What the tape recorded (one line per op, in order):")
    tape.print()
    loss.backward()
    print()
    print("Gradients after loss.backward():")
    print("dloss/dx =", x.grad)
    print("dloss/dw =", w.grad)
    print("dloss/db =", b.grad)
    return 0
