"""The image classifiers of `python -m opgraph train`, to build, save, load and use.

    from opgraph import models
    model = models.load("weights.npz")           # what `train` saved, in eval mode
    classes, probs = models.predict(model, images)   # images: (N, C, H, W) in [0, 1]
    report = models.evaluate(model, x_test, y_test)  # accuracy and confusion matrix

    images, _ = models.read_image("digit.png")   # or .npy; grey, resized to 8x8

    model = models.build("cnn", image_shape=(1, 8, 8), num_classes=10)
    models.save(model, "mine.npz")               # weights plus what build() needs

A file written by `models.save` (and by `train`) is an ordinary opgraph state dict:
`model.load_state_dict(opgraph.load(path))` works as for any other. The archive's
comment (which NumPy ignores) describes the model as JSON, so `load` rebuilds the
right architecture by itself.

Adding a model: decorate a builder `f(image_shape, num_classes, backend) -> Module`
with `@register("name", "one line shown by --help")`; `train --model name`,
`graph`, `evaluate` and `predict` pick it up.
"""
import json
import os

import numpy as np

__all__ = ["MODELS", "register", "names", "build", "save", "load", "predict",
           "evaluate", "format_confusion", "read_image"]

MODELS = {}  # name -> (builder, description)
COMMENT_PREFIX = b"opgraph.models "  # then the model_config as JSON
DEFAULT_IMAGE_SHAPE = (1, 8, 8)  # the bundled digits


def register(name, description):
    """Decorator: add a model builder under `name`."""
    def decorate(builder):
        MODELS[name] = (builder, description)
        return builder
    return decorate


def names():
    return list(MODELS)


@register("cnn", "conv-relu-pool-conv-relu-pool-linear")
def cnn(image_shape, num_classes, backend=None):
    from opgraph import nn
    c, h, w = image_shape
    return nn.Sequential(
        nn.Conv2d(c, 16, 3, padding=1, backend=backend), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1, backend=backend), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * (h // 4) * (w // 4), num_classes, backend=backend))


@register("bn-cnn", "the cnn with BatchNorm after each conv: higher test accuracy")
def bn_cnn(image_shape, num_classes, backend=None):
    """The cnn with each conv followed by BatchNorm2d (the convs then need no bias): on the
    bundled digits it beats the cnn with the same training settings (see docs/tutorial.md)."""
    from opgraph import nn
    c, h, w = image_shape
    return nn.Sequential(
        nn.Conv2d(c, 16, 3, padding=1, bias=False, backend=backend),
        nn.BatchNorm2d(16, backend=backend), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1, bias=False, backend=backend),
        nn.BatchNorm2d(32, backend=backend), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * (h // 4) * (w // 4), num_classes, backend=backend))


@register("mlp", "two hidden layers (128, 64) with ReLU")
def mlp(image_shape, num_classes, backend=None):
    from opgraph import nn
    c, h, w = image_shape
    return nn.Sequential(
        nn.Flatten(), nn.Linear(c * h * w, 128, backend=backend), nn.ReLU(),
        nn.Linear(128, 64, backend=backend), nn.ReLU(),
        nn.Linear(64, num_classes, backend=backend))


def _image_shape(image_shape):
    try:
        shape = tuple(int(s) for s in image_shape)
    except (TypeError, ValueError):
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"models: image_shape must be (channels, height, width) of positive "
                         f"ints, got {image_shape!r}")
    return shape


def build(name="cnn", image_shape=DEFAULT_IMAGE_SHAPE, num_classes=10, backend=None):
    """A freshly initialised model `name` for images of `image_shape` (C, H, W).

    The model remembers how it was built in `model.model_config`, which `save` writes."""
    if name not in MODELS:
        raise ValueError(f"models.build: unknown model {name!r}; expected one of {names()}")
    image_shape = _image_shape(image_shape)
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) \
            or num_classes < 2:
        raise ValueError(f"models.build: num_classes must be an int >= 2, got {num_classes!r}")
    model = MODELS[name][0](image_shape, int(num_classes), backend)
    object.__setattr__(model, "model_config", {"model": name, "image_shape": image_shape,
                                               "num_classes": int(num_classes)})
    return model


def save(model, path):
    """Write `model`'s weights to `path` (an opgraph state dict, written as is) with its
    `model_config` in the archive's comment, so that `load` can rebuild it."""
    import uuid
    import zipfile
    from opgraph.serialization import save as save_state
    config = getattr(model, "model_config", None)
    if config is None:
        raise ValueError("models.save: the model was not made by models.build, so there is no "
                         "description to save; use opgraph.save(model, path) for the weights")
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    temporary = os.path.join(folder, f".{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:  # written whole beside the target, then renamed: `path` is never half-written
        save_state(model, temporary)
        with zipfile.ZipFile(temporary, "a") as archive:
            archive.comment = COMMENT_PREFIX + json.dumps(config).encode()
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def _config_of(path):
    """The model description of a `save`d file, or None for a plain state dict."""
    import zipfile
    try:
        with zipfile.ZipFile(path) as archive:
            comment = archive.comment
    except (OSError, zipfile.BadZipFile):
        return None
    if not comment.startswith(COMMENT_PREFIX):
        return None
    try:
        config = json.loads(comment[len(COMMENT_PREFIX):].decode())
        return {"model": str(config["model"]), "image_shape": _image_shape(config["image_shape"]),
                "num_classes": int(config["num_classes"])}
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise ValueError(f"models.load: {path}: its model description is unreadable "
                         f"({e})") from None


def _fits(model, state):
    own = dict(model.state_dict())
    return set(own) == set(state) and all(tuple(own[k].shape) == tuple(state[k].shape)
                                          for k in own)


def _weights(value):
    return hasattr(value, "shape") and hasattr(value, "ndim")


def _state_dicts(state, where=""):
    """(path, state) for every dict of weights in a (nested) checkpoint, the whole file
    first: {"model": ..., "optimizer": ..., "epoch": 3} gives ("model", ...) and the
    optimizer's per-parameter entries."""
    if all(_weights(v) for v in state.values()) and any(v.ndim for v in state.values()):
        yield where, state
        return
    for key, value in state.items():
        if isinstance(value, dict):
            yield from _state_dicts(value, f"{where}.{key}" if where else str(key))


def _summary(state):
    """What a checkpoint holds, in a few words: model (a dict), epoch (int), ..."""
    parts = []
    for key, value in list(state.items())[:8]:
        kind = (f"{len(value)} entries" if isinstance(value, dict) else
                f"shape {tuple(value.shape)}" if _weights(value) and value.ndim else
                "a number" if _weights(value) else type(value).__name__)
        parts.append(f"{key!r} ({kind})")
    return ", ".join(parts) + (", ..." if len(state) > 8 else "")


def _fitting(state, model, image_shape, num_classes, backend):
    """(registered models `state` fits, the config they were tried with)."""
    config = {"model": model, "image_shape": image_shape or DEFAULT_IMAGE_SHAPE,
              "num_classes": num_classes}
    if config["num_classes"] is None:  # the last matrix is the classifier's weight
        matrices = [v for v in state.values() if v.ndim == 2]
        config["num_classes"] = int(matrices[-1].shape[0]) if matrices else 10
    candidates = [model] if model is not None else names()
    return [n for n in candidates
            if _fits(build(n, config["image_shape"], config["num_classes"], backend), state)], \
        config


def load(path, model=None, image_shape=None, num_classes=None, backend=None):
    """The model saved at `path`, weights loaded, in eval mode.

    Files from `models.save` (and `train`) describe their model. For a plain state dict
    (from `opgraph.save`) give `model` (and `image_shape` / `num_classes` when not the
    digits' (1, 8, 8) and 10), or let `load` find the one registered model it fits. A
    checkpoint that nests the state dict (`{"model": model.state_dict(), "optimizer":
    ..., "epoch": 3}`) is searched for the one state dict that fits."""
    from opgraph.serialization import load as load_state
    path = os.fspath(path)
    state = load_state(path, backend=backend)
    config = _config_of(path)
    if config is None:
        tried = [(where, sub) + _fitting(sub, model, image_shape, num_classes, backend)
                 for where, sub in _state_dicts(state)]
        found = [t for t in tried if len(t[2]) == 1]
        if len(found) != 1:
            shape = "x".join(str(s) for s in image_shape or DEFAULT_IMAGE_SHAPE)
            candidates = [model] if model is not None else names()
            if not tried:
                what = f"it holds no weights: {_summary(state) or 'nothing'}"
            elif len(found) > 1:
                what = (f"it holds several state dicts that fit a model: "
                        f"{', '.join(repr(t[0]) for t in found)}")
            elif len(tried) == 1 and tried[0][0] == "" and len(tried[0][2]) > 1:
                what = f"it fits {tried[0][2]}"
            elif len(tried) == 1 and tried[0][0] == "":
                what = (f"it fits none of {candidates} for {shape} images and "
                        f"{tried[0][3]['num_classes']} classes")
            else:
                what = (f"it holds {_summary(state)}, and none of its state dicts "
                        f"({', '.join(repr(t[0]) for t in tried[:4])}) fits one of {candidates} "
                        f"for {shape} images")
            raise ValueError(f"models.load: {path} does not say which model it holds (it was "
                             f"saved by opgraph.save, not opgraph.models.save) and {what}; "
                             "pass model=..., image_shape=... and num_classes=...")
        _, state, (name,), config = found[0]
        config["model"] = name
    elif model is not None and model != config["model"]:
        raise ValueError(f"models.load: {path} holds a {config['model']!r} model, not {model!r}")
    net = build(config["model"], config["image_shape"], config["num_classes"], backend)
    try:
        net.load_state_dict(state)
    except (KeyError, ValueError) as e:
        raise ValueError(f"models.load: {path} does not fit a {config['model']!r} model for "
                         f"{config['image_shape']} images: {e}") from None
    net.eval()
    return net


def _batches(model, images, batch_size):
    import opgraph
    from opgraph.data import DataLoader
    x = np.asarray(images.numpy() if isinstance(images, opgraph.Tensor) else images)
    config = getattr(model, "model_config", None)
    expected = tuple(config["image_shape"]) if config else None
    if expected is not None and x.shape[1:] != expected:
        raise ValueError(f"models.predict: images of shape {x.shape}; this {config['model']!r} "
                         f"model takes (N, {', '.join(map(str, expected))})")
    if x.dtype.kind not in "fiub":
        raise TypeError(f"models.predict: images of dtype {x.dtype}; expected numbers")
    x = x.astype(np.float32) if x.dtype != np.float64 else x
    was_training = model.training
    model.eval()
    try:
        with opgraph.no_grad():
            for xb in DataLoader(x, batch_size=batch_size):
                yield model(xb).numpy()
    finally:
        model.train(was_training)


def predict(model, images, batch_size=256):
    """(classes, probabilities) for `images` (N, C, H, W), scaled as in training
    ([0, 1], ink bright): classes int64 (N,), probabilities (N, num_classes)."""
    logits = [b for b in _batches(model, images, batch_size)]
    if not logits:
        return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
    logits = np.concatenate(logits)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return logits.argmax(axis=1).astype(np.int64), shifted / shifted.sum(axis=1, keepdims=True)


def evaluate(model, images, labels, batch_size=256):
    """{"accuracy", "correct", "total", "confusion"} of `model` on labelled images;
    confusion[i, j] counts the images of class i predicted as class j."""
    labels = np.asarray(labels).astype(np.int64)
    classes, probs = predict(model, images, batch_size)
    k = max(probs.shape[1] if probs.size else 0, int(labels.max()) + 1 if labels.size else 0)
    confusion = np.zeros((k, k), np.int64)
    np.add.at(confusion, (labels, classes), 1)
    correct = int((classes == labels).sum())
    total = len(labels)
    return {"accuracy": correct / total if total else float("nan"), "correct": correct,
            "total": total, "confusion": confusion}


def format_confusion(confusion):
    """The confusion matrix as text: rows are the true class, columns the prediction."""
    k = len(confusion)
    width = max(4, len(str(int(confusion.max()))) + 1 if confusion.size else 4)
    lines = ["true \\ pred" + "".join(f"{j:>{width}}" for j in range(k))]
    for i in range(k):
        lines.append(f"{i:>11}" + "".join(f"{int(c):>{width}}" for c in confusion[i]))
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# images from files

IMAGE_FILES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def _area_resize(image, height, width):
    """`image` (H, W) averaged onto a height x width grid (each output pixel is the mean
    of the source area it covers; enlarging repeats pixels)."""
    def weights(n_out, n_in):
        edges = np.linspace(0, n_in, n_out + 1)
        m = np.zeros((n_out, n_in))
        for i in range(n_out):
            lo, hi = edges[i], edges[i + 1]
            for j in range(int(np.floor(lo)), min(n_in, int(np.ceil(hi)))):
                m[i, j] = min(hi, j + 1) - max(lo, j)
        return m / m.sum(axis=1, keepdims=True)
    return weights(height, image.shape[0]) @ image @ weights(width, image.shape[1]).T


def read_image(path, image_shape=DEFAULT_IMAGE_SHAPE, invert="auto"):
    """(images, inverted): the images of a file as a float32 array (N, C, H, W) for a
    model taking `image_shape`, and whether they were inverted.

    .npy: an array of one image ((H, W) or (C, H, W)) or of several ((N, H, W) for one
    channel, (N, C, H, W)); float data is taken as is (the training scale: [0, 1], ink
    bright), integer data as 8-bit grey levels (divided by 255). The size must match.
    Picture files (.png; .jpg and others when Pillow is installed) need matplotlib: they
    are turned grey, scaled to [0, 1] and resized (area average) to H x W.
    invert: "auto" turns dark ink on a light background (a light border) into the
    training data's light-on-dark; True / False to force it."""
    c, h, w = _image_shape(image_shape)
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    if not os.path.isfile(path):
        raise FileNotFoundError(f"read_image: no such file: {path}")
    if suffix == ".npy":
        with open(path, "rb") as f:
            if f.read(6) != b"\x93NUMPY":
                raise ValueError(f"read_image: {path} is not a NumPy .npy file (no .npy header)")
        try:
            x = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise ValueError(f"read_image: {path} is not a NumPy .npy array ({e})") from None
        if x.dtype.kind not in "fiub":
            raise ValueError(f"read_image: {path} holds dtype {x.dtype}; expected numbers")
        x = x.astype(np.float32) / 255 if x.dtype.kind in "iub" else x.astype(np.float32)
        found = x.shape
        if x.ndim == 2 and c == 1:
            x = x[None, None]
        elif x.ndim == 3 and x.shape == (c, h, w):
            x = x[None]
        elif x.ndim == 3 and c == 1:
            x = x[:, None]
        if x.ndim != 4 or x.shape[1:] != (c, h, w):
            raise ValueError(f"read_image: {path} holds an array of shape {found}; the model "
                             f"takes images of {c}x{h}x{w} ((H, W), (C, H, W), (N, H, W) or "
                             f"(N, C, H, W))")
    elif suffix in IMAGE_FILES:
        try:
            import matplotlib.image
        except ImportError:
            raise ImportError(f"read_image: reading {suffix} files needs matplotlib: pip install "
                              "'opgraph[plot]' (or save the image as a .npy array)") from None
        try:
            pixels = np.asarray(matplotlib.image.imread(path))
        except Exception as e:  # Pillow missing for .jpg, a corrupt file, ...
            raise ValueError(f"read_image: cannot read {path} as an image "
                             f"({type(e).__name__}: {e})") from None
        if pixels.dtype.kind in "iub":
            pixels = pixels / 255.0
        if pixels.ndim == 3:  # drop alpha over white, then luminance
            if pixels.shape[2] == 4:
                alpha = pixels[..., 3:]
                pixels = pixels[..., :3] * alpha + (1 - alpha)
            pixels = pixels[..., :3] @ np.array([0.299, 0.587, 0.114])
        grey = _area_resize(pixels.astype(np.float64), h, w)
        x = np.repeat(grey[None, None], c, axis=1).astype(np.float32)
    else:
        raise ValueError(f"read_image: {path}: unsupported file type {suffix or '(none)'}; "
                         f"use .npy or a picture ({', '.join(IMAGE_FILES)})")
    if not len(x):
        raise ValueError(f"read_image: {path} holds no images (shape {x.shape})")
    bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
    if bad:
        raise ValueError(f"read_image: {path} has {bad} NaN or infinite pixel"
                         f"{'s' if bad > 1 else ''} of {np.size(x)}")
    if invert == "auto":
        border = np.concatenate([x[..., 0, :].ravel(), x[..., -1, :].ravel(),
                                 x[..., :, 0].ravel(), x[..., :, -1].ravel()])
        invert = bool(border.mean() > 0.5)
    return (1 - x if invert else x), bool(invert)
