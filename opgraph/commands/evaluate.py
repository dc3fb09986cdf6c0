"""`python -m opgraph evaluate WEIGHTS`: the accuracy and the confusion matrix of saved
weights (from `train`) on the test split, as text and optionally as a picture."""


def add_arguments(parser):
    parser.add_argument("weights", help="a weights file written by `train` (or models.save)")
    parser.add_argument("--data", metavar="PATH", default=None,
                        help="the MNIST IDX folder the weights were trained on (default: the "
                             "bundled digits)")
    parser.add_argument("--backend", choices=["numpy", "numba", "cuda"], default=None,
                        help="backend to run on (default: numpy)")
    parser.add_argument("--plot", metavar="PNG", default=None,
                        help="also draw the confusion matrix to this image (needs matplotlib)")


def plot_confusion(confusion, path, title):
    import numpy as np
    from matplotlib.figure import Figure
    k = len(confusion)
    fig = Figure(figsize=(1.5 + 0.5 * k, 1.2 + 0.5 * k))
    ax = fig.add_subplot(1, 1, 1)
    rows = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            if confusion[i, j]:
                ax.text(j, i, str(int(confusion[i, j])), ha="center", va="center", fontsize=8,
                        color="white" if rows[i, j] > 0.5 else "black")
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def load_model(path, backend=None):
    """(model, None) or (None, exit code) after a one-line error. `backend`, when given,
    becomes the default backend first (the model's and the inputs' tensors live there)."""
    import os
    import opgraph
    from opgraph import models
    from ._cli import fail
    if backend is not None:
        try:
            opgraph.set_default_backend(backend)
        except (RuntimeError, ImportError) as e:
            return None, fail(e)
    if not os.path.isfile(path):
        return None, fail(f"no such weights file: {path!r} (write one with: train --out {path})")
    try:
        return models.load(path, backend=backend), None
    except (OSError, ValueError, KeyError, TypeError) as e:
        return None, fail(e)


def describe(model):
    config = model.model_config
    return (f"{config['model'].upper()} for {'x'.join(map(str, config['image_shape']))} images, "
            f"{config['num_classes']} classes")


def run(args):
    from opgraph import models
    from ._cli import FAILED, fail, plot_path
    from .train import load_data

    if args.plot:
        plot_path(args.plot)
    model, code = load_model(args.weights, args.backend)
    if model is None:
        return code
    try:
        (_, (x_test, y_test)), source = load_data(args.data)
    except (OSError, ValueError) as e:
        return fail(e)
    wanted = tuple(model.model_config["image_shape"])
    if x_test.shape[1:] != wanted:
        shape = "x".join(map(str, x_test.shape[1:]))
        return fail(f"{args.weights} takes {'x'.join(map(str, wanted))} images but {source} has "
                    f"{shape}: pass --data with the data it was trained on")
    report = models.evaluate(model, x_test, y_test)
    print(f"weights: {args.weights} ({describe(model)})")
    print(f"test split: {source}, {report['total']} images")
    print(f"accuracy: {100 * report['accuracy']:.2f}% ({report['correct']}/{report['total']})")
    print()
    print("confusion matrix (rows: true class, columns: predicted class):")
    print(models.format_confusion(report["confusion"]))
    confusion = report["confusion"]
    totals = confusion.sum(axis=1)
    per_class = "  ".join(f"{i}: {100 * confusion[i, i] / totals[i]:.0f}%"
                          for i in range(len(totals)) if totals[i])
    print(f"per-class accuracy: {per_class}")
    if args.plot:
        try:
            plot_confusion(confusion, args.plot,
                           f"{describe(model)}\naccuracy {100 * report['accuracy']:.2f}% on "
                           f"{report['total']} test images")
        except OSError as e:
            return fail(f"cannot write the plot to {args.plot!r}: {e.strerror or e}", FAILED)
        print(f"saved the confusion matrix to {args.plot}")
    return 0
