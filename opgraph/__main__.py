"""`python -m opgraph COMMAND ...`: each command is a module in opgraph/commands
with `add_arguments(parser)` and `run(args) -> exit code`."""
import argparse
import importlib
import sys

COMMANDS = {
    "demo": "a small graph: forward, backward, gradients and the tape",
    "train": "train a small CNN or MLP on the bundled digits (or MNIST IDX files)",
    "graph": "draw the forward (or backward) graph of a model",
    "mis": "maximum independent set of a graph by tropical tensor network contraction",
    "spinglass": "spin-glass ground state by tropical tensor network contraction",
    "bench": "benchmark the backends against NumPy and the installed peers",
}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m opgraph", description=__doc__.split(":")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in COMMANDS.items():
        try:
            module = importlib.import_module(f"opgraph.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"opgraph.commands.{name}":
                raise
            continue  # a command not written yet
        p = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(p)
        p.set_defaults(_module=module)
    args = parser.parse_args(argv)
    return args._module.run(args) or 0


if __name__ == "__main__":
    sys.exit(main())
