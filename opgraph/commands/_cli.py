"""What every command shares: the exit codes, one-line errors, and the checks of
option values and output paths that run before any long work."""
import math
import os
import sys

OK, FAILED, USAGE, INTERRUPTED = 0, 1, 2, 130
EXIT_CODES = f"""\
exit codes (every command):
  {OK}    success
  {FAILED}    the work itself failed (the solver refused a graph as too large, training
       diverged, a file could not be written after all)
  {USAGE}    bad command line or input: an invalid option value, an unreadable input, an
       output path that cannot be written, a missing optional package or backend,
       standard output closed early (broken pipe)
  {INTERRUPTED}  interrupted (Ctrl-C)"""

PLOT_INSTALL = "pip install 'opgraph[plot]' (or pip install matplotlib)"


class UsageError(ValueError):
    """A bad option value or path, found before the command starts its work."""


def fail(message, code=USAGE):
    """Print `error: message` (first line only) to stderr; return the exit code."""
    text = str(message).strip().splitlines()
    print(f"error: {text[0] if text else message}", file=sys.stderr)
    return code


def number(value, option, minimum=None, above=None, integer=False):
    """`value` if it is a finite number within bounds, else UsageError naming `option`."""
    kind = "an integer" if integer else "a finite number"
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or (integer and not float(value).is_integer()):
        raise UsageError(f"{option} must be {kind}, got {value!r}")
    if minimum is not None and value < minimum:
        raise UsageError(f"{option} must be >= {minimum}, got {value!r}")
    if above is not None and value <= above:
        raise UsageError(f"{option} must be > {above}, got {value!r}")
    return value


def matplotlib_formats(option):
    """The image formats matplotlib can write; UsageError when it is not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        from matplotlib.figure import Figure
    except ImportError:
        raise UsageError(f"{option} needs matplotlib, which is not installed: "
                         f"{PLOT_INSTALL}") from None
    return sorted(Figure().canvas.get_supported_filetypes())


def extension(path):
    return os.path.splitext(path)[1].lower().lstrip(".")


def output_path(path, option, formats=None, what="the output"):
    """Check that `path` can be written (its folder exists and is writable, it is not a
    folder) and, given `formats`, that its extension is one of them. Returns `path`."""
    path = os.fspath(path)
    if not path:
        raise UsageError(f"{option}: empty path")
    if os.path.isdir(path):
        raise UsageError(f"cannot write {what} to {path!r}: it is a folder")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"cannot write {what} to {path!r}: the folder {folder!r} does not exist")
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise UsageError(f"cannot write {what} to {path!r}: permission denied")
    if formats is not None:
        check_format(path, option, formats)
    return path


def check_format(path, option, formats):
    found = extension(path)
    if found not in formats:
        raise UsageError(f"{option} {path!r}: unsupported format "
                         f"{'.' + found if found else '(no extension)'}; use one of "
                         f"{', '.join('.' + f for f in formats)}")


def plot_path(path, option="--plot"):
    """An image path matplotlib can write (checked before the work starts)."""
    output_path(path, option, what="the plot")
    check_format(path, option, matplotlib_formats(option))
    return path


def quiet_broken_pipe():
    """After stdout was closed by its reader: stop Python from complaining again at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
