"""`python -m opgraph train`: train a small CNN (or MLP) on the bundled digits
(or on MNIST IDX files with --data), show a progress bar, print the test
accuracy, save the weights and optionally plot the curves."""
import sys
import time

import numpy as np

DEFAULTS = dict(model="cnn", epochs=20, batch_size=32, lr=2e-3, seed=0)


def add_arguments(parser):
    parser.add_argument("--backend", choices=["numpy", "numba", "cuda"], default=None,
                        help="backend to train on (default: the default backend, numpy)")
    from opgraph import models
    parser.add_argument("--model", choices=models.names(), default=DEFAULTS["model"],
                        help="; ".join(f"{name}: {description}" for name, (_, description)
                                       in models.MODELS.items()) + " (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=DEFAULTS["epochs"],
                        help="passes over the training set (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"],
                        help="examples per step (default: %(default)s)")
    parser.add_argument("--lr", type=float, default=DEFAULTS["lr"],
                        help="Adam learning rate (default: %(default)s)")
    parser.add_argument("--optimizer", choices=["adam", "sgd"], default="adam",
                        help="adam, or sgd with momentum 0.9 (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULTS["seed"],
                        help="seed for the initial weights and the shuffling (default: "
                             "%(default)s)")
    parser.add_argument("--data", metavar="PATH", default=None,
                        help="a directory with the MNIST IDX files (train-images-idx3-ubyte, "
                             "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
                             "t10k-labels-idx1-ubyte, optionally .gz) instead of the bundled "
                             "8x8 digits")
    parser.add_argument("--subset", type=int, default=None, metavar="N",
                        help="train on the first N training examples only (quick runs)")
    parser.add_argument("--out", default="weights.npz", metavar="PATH",
                        help="where to save the trained weights (.npz; default: %(default)s; "
                             "'' to skip)")
    parser.add_argument("--plot", default=None, metavar="PNG",
                        help="draw the loss and accuracy curves to this file (needs matplotlib: "
                             "pip install 'opgraph[plot]')")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bar (there is none either when stderr is not a "
                             "terminal: then one line per epoch)")


def build_model(name, image_shape, num_classes=10, backend=None):
    """The model `name` of opgraph.models (kept here for older scripts)."""
    from opgraph import models
    return models.build(name, image_shape, num_classes, backend)


def load_data(path=None):
    """((x_train, y_train), (x_test, y_test)) and a description."""
    from opgraph import data
    if path is None:
        return data.load_digits(), "bundled UCI digits (8x8)"
    return data.load_mnist(path), f"MNIST IDX files in {path}"


def evaluate(model, x, y, batch_size=256):
    """Accuracy of `model` on NumPy arrays x, y (eval mode, no recording)."""
    from opgraph import models
    return models.evaluate(model, x, y, batch_size)["accuracy"]


def _check_matplotlib():
    try:
        import matplotlib  # noqa: F401
        return True
    except ImportError:
        return False


def plot_curves(history, path, title=None):
    from matplotlib.figure import Figure
    fig = Figure(figsize=(9, 3.8))
    ax1, ax2 = fig.subplots(1, 2)
    steps = np.arange(1, len(history["loss"]) + 1)
    ax1.plot(steps, history["loss"], lw=0.8, color="#2563eb", label="training batches")
    ax1.set_xlabel("step")
    ax1.set_ylabel("cross-entropy loss")
    ax1.set_yscale("log")
    ax1.legend()
    epochs = np.arange(1, len(history["train_acc"]) + 1)
    ax2.plot(epochs, history["train_acc"], "o-", label="train")
    ax2.plot(epochs, history["test_acc"], "s-", label="test")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("accuracy")
    ax2.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def check_arguments(args):
    """Every option value and output path, before any data is loaded (UsageError)."""
    from ._cli import UsageError, number, output_path, plot_path
    number(args.epochs, "--epochs", minimum=1, integer=True)
    number(args.batch_size, "--batch-size", minimum=1, integer=True)
    number(args.lr, "--lr", above=0)
    number(args.seed, "--seed", minimum=0, integer=True)
    if args.subset is not None:
        number(args.subset, "--subset", minimum=1, integer=True)
    if args.out:
        output_path(args.out, "--out", what="the weights")
    if args.plot:
        output_path(args.plot, "--plot", what="the plot")
        if not _check_matplotlib():
            raise UsageError("--plot needs matplotlib, which is not installed: "
                             "pip install 'opgraph[plot]' (or pip install matplotlib)")
        plot_path(args.plot)


def how_to_use(path, prog):
    import shlex
    evaluate = f"{prog} evaluate {shlex.quote(path)}"
    predict = f"{prog} predict {shlex.quote(path)} IMAGE..."
    width = max(len(evaluate), len(predict)) + 2
    return (f"To use them:\n"
            f"  {evaluate:<{width}}accuracy and confusion matrix on the test split\n"
            f"  {predict:<{width}}classify .npy arrays or pictures (.png, ...)\n"
            f"  in Python: model = opgraph.models.load({path!r}); "
            f"classes, probabilities = opgraph.models.predict(model, images)")


def run(args):
    import opgraph
    from opgraph import models, nn, optim
    from opgraph.data import DataLoader
    from tqdm import tqdm
    from ._cli import FAILED, fail

    check_arguments(args)
    if args.backend is not None:
        try:
            opgraph.set_default_backend(args.backend)
        except (RuntimeError, ImportError) as e:
            return fail(e)
    backend = opgraph.get_default_backend()
    try:
        ((x_train, y_train), (x_test, y_test)), source = load_data(args.data)
    except (OSError, ValueError) as e:
        return fail(e)
    if args.subset is not None:
        x_train, y_train = x_train[:args.subset], y_train[:args.subset]
    num_classes = int(max(y_train.max(), y_test.max())) + 1

    nn.manual_seed(args.seed)
    model = models.build(args.model, x_train.shape[1:], num_classes)
    loss_fn = nn.CrossEntropyLoss()
    if args.optimizer == "adam":
        opt = optim.Adam(model.parameters(), lr=args.lr)
    else:
        opt = optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    loader = DataLoader((x_train, y_train), batch_size=args.batch_size, shuffle=True,
                        seed=args.seed)
    print(f"training a {args.model.upper()} ({model.num_parameters():,} parameters) on "
          f"{source}: {len(x_train)} train / {len(x_test)} test images, backend "
          f"{backend.name}, {args.epochs} epochs, batch {args.batch_size}, "
          f"{args.optimizer} lr {args.lr}", flush=True)

    # a bar only on a terminal: in a log, carriage-return updates would be one huge line
    show_bar = not args.quiet and sys.stderr.isatty()
    history = {"loss": [], "train_acc": [], "test_acc": []}
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        seen = correct = 0
        total_loss = 0.0
        bar = tqdm(loader, desc=f"epoch {epoch}/{args.epochs}", leave=False,
                   disable=not show_bar, unit="batch")
        for step, (xb, yb) in enumerate(bar, 1):
            opt.zero_grad()
            logits = model(xb)
            loss = loss_fn(logits, yb)
            loss_value = loss.item()
            if not np.isfinite(loss_value):
                bar.close()
                return fail(f"training diverged: the loss is {loss_value} at epoch {epoch}, "
                            f"step {step} (lr {args.lr}); try a smaller --lr", FAILED)
            loss.backward()
            opt.step()
            n = len(yb)
            seen += n
            total_loss += loss_value * n
            correct += int((logits.numpy().argmax(axis=1) == yb.numpy()).sum())
            history["loss"].append(loss_value)
            bar.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{correct / seen:.3f}",
                            refresh=False)
        test_acc = evaluate(model, x_test, y_test)
        history["train_acc"].append(correct / seen)
        history["test_acc"].append(test_acc)
        line = (f"epoch {epoch:3d}/{args.epochs}  loss {total_loss / seen:.4f}  "
                f"train acc {correct / seen:.4f}  test acc {test_acc:.4f}  "
                f"({time.perf_counter() - start:.1f} s)")
        if show_bar:
            tqdm.write(line)
        else:
            print(line, flush=True)
    elapsed = time.perf_counter() - start
    test_acc = history["test_acc"][-1]
    print(f"test accuracy: {100 * test_acc:.2f}% ({round(test_acc * len(y_test))}/"
          f"{len(y_test)}) after {args.epochs} epochs in {elapsed:.1f} s")
    if args.plot:
        plot_curves(history, args.plot,
                    title=f"{args.model.upper()} on backend {backend.name}: final test accuracy "
                          f"{100 * test_acc:.1f}% ({source}, {args.epochs} epochs)")
        print(f"saved the curves to {args.plot}")
    if args.out:
        try:
            models.save(model, args.out)
        except OSError as e:
            return fail(f"cannot write the weights to {args.out!r}: {e.strerror or e}", FAILED)
        print(f"saved the weights to {args.out}. "
              + how_to_use(args.out, getattr(args, "_prog", "python -m opgraph")))
    return 0
