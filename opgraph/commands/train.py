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
    parser.add_argument("--model", choices=["cnn", "mlp"], default=DEFAULTS["model"],
                        help="cnn: conv-relu-pool-conv-relu-pool-linear; mlp: two hidden layers "
                             "(default: %(default)s)")
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
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def build_model(name, image_shape, num_classes=10, backend=None):
    """The two models of the command. image_shape is (C, H, W)."""
    from opgraph import nn
    c, h, w = image_shape
    if name == "cnn":
        return nn.Sequential(
            nn.Conv2d(c, 16, 3, padding=1, backend=backend), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1, backend=backend), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * (h // 4) * (w // 4), num_classes, backend=backend))
    if name == "mlp":
        return nn.Sequential(
            nn.Flatten(), nn.Linear(c * h * w, 128, backend=backend), nn.ReLU(),
            nn.Linear(128, 64, backend=backend), nn.ReLU(),
            nn.Linear(64, num_classes, backend=backend))
    raise ValueError(f"unknown model {name!r}; expected 'cnn' or 'mlp'")


def load_data(path=None):
    """((x_train, y_train), (x_test, y_test)) and a description."""
    from opgraph import data
    if path is None:
        return data.load_digits(), "bundled UCI digits (8x8)"
    return data.load_mnist(path), f"MNIST IDX files in {path}"


def evaluate(model, x, y, batch_size=256):
    """Accuracy of `model` on NumPy arrays x, y (eval mode, no recording)."""
    import opgraph
    from opgraph.data import DataLoader
    model.eval()
    correct = 0
    with opgraph.no_grad():
        for xb, yb in DataLoader((x, y), batch_size=batch_size):
            correct += int((model(xb).numpy().argmax(axis=1) == yb.numpy()).sum())
    model.train()
    return correct / len(y)


def _check_matplotlib():
    try:
        import matplotlib  # noqa: F401
        return True
    except ImportError:
        return False


def plot_curves(history, path):
    from matplotlib.figure import Figure
    fig = Figure(figsize=(9, 3.5))
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
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def run(args):
    import opgraph
    from opgraph import nn, optim
    from opgraph.data import DataLoader
    from opgraph.serialization import save
    from tqdm import tqdm

    if args.plot and not _check_matplotlib():
        print("error: --plot needs matplotlib, which is not installed: "
              "pip install 'opgraph[plot]' (or pip install matplotlib)", file=sys.stderr)
        return 2
    if args.epochs < 1 or args.batch_size < 1 or args.lr <= 0:
        print("error: --epochs and --batch-size must be >= 1 and --lr > 0", file=sys.stderr)
        return 2
    if args.backend is not None:
        try:
            opgraph.set_default_backend(args.backend)
        except (RuntimeError, ImportError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    backend = opgraph.get_default_backend()
    try:
        ((x_train, y_train), (x_test, y_test)), source = load_data(args.data)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.subset is not None:
        x_train, y_train = x_train[:args.subset], y_train[:args.subset]
    num_classes = int(max(y_train.max(), y_test.max())) + 1

    nn.manual_seed(args.seed)
    model = build_model(args.model, x_train.shape[1:], num_classes)
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
          f"{args.optimizer} lr {args.lr}")

    history = {"loss": [], "train_acc": [], "test_acc": []}
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        seen = correct = 0
        total_loss = 0.0
        bar = tqdm(loader, desc=f"epoch {epoch}/{args.epochs}", leave=False,
                   disable=args.quiet, unit="batch")
        for xb, yb in bar:
            opt.zero_grad()
            logits = model(xb)
            loss = loss_fn(logits, yb)
            loss.backward()
            opt.step()
            loss_value = loss.item()
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
        tqdm.write(line) if not args.quiet else print(line)
    elapsed = time.perf_counter() - start
    test_acc = history["test_acc"][-1]
    print(f"test accuracy: {100 * test_acc:.2f}% ({round(test_acc * len(y_test))}/"
          f"{len(y_test)}) after {args.epochs} epochs in {elapsed:.1f} s")
    if args.out:
        save(model, args.out)
        print(f"saved the weights to {args.out}")
    if args.plot:
        plot_curves(history, args.plot)
        print(f"saved the curves to {args.plot}")
    return 0
