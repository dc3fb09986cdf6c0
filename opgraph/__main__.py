"""`python -m opgraph COMMAND ...` (or `opgraph COMMAND ...`): each command is a module
in opgraph/commands with `add_arguments(parser)` and `run(args) -> exit code`."""
import argparse
import importlib
import os
import sys

from opgraph.commands._cli import EXIT_CODES, INTERRUPTED, USAGE, UsageError, fail, \
    quiet_broken_pipe

COMMANDS = {
    "demo": "a small graph: forward, backward, gradients and the tape",
    "train": "train a small CNN or MLP on the bundled digits (or MNIST IDX files)",
    "evaluate": "accuracy and confusion matrix of saved weights on the test split",
    "predict": "classify image files (.npy, .png, ...) with saved weights",
    "graph": "draw the forward (or backward) graph of a model",
    "mis": "maximum independent set of a graph by tropical tensor network contraction",
    "spinglass": "spin-glass ground state by tropical tensor network contraction",
    "bench": "benchmark the backends against NumPy and the installed peers",
}


DESCRIPTION = ("opgraph: an operation-graph autodiff framework. Train, evaluate and inspect "
               "small models; solve independent sets and spin glasses by tropical tensor "
               "networks; benchmark the backends. `COMMAND --help` tells more.")


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        """A bad command line: one line on stderr, exit code 2."""
        self.exit(USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _prog():
    """`opgraph` when run as the console script, else `python -m opgraph`."""
    name = os.path.basename(sys.argv[0] if sys.argv and sys.argv[0] else "")
    return "opgraph" if os.path.splitext(name)[0] in ("opgraph", "opgraph-script") \
        else "python -m opgraph"


def build_parser():
    from opgraph import __version__
    prog = _prog()
    parser = _Parser(prog=prog, description=DESCRIPTION, epilog=EXIT_CODES,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"opgraph {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        module = importlib.import_module(f"opgraph.commands.{name}")
        p = sub.add_parser(name, help=help_text, description=help_text, epilog=EXIT_CODES,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_module=module, _prog=prog)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        code = args._module.run(args) or 0
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except UsageError as e:
        return fail(e, USAGE)
    except BrokenPipeError:
        quiet_broken_pipe()
        return fail("standard output was closed before the command finished (broken pipe)",
                    USAGE)
    except KeyboardInterrupt:
        return fail("interrupted", INTERRUPTED)


if __name__ == "__main__":
    sys.exit(main())
