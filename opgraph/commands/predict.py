"""`python -m opgraph predict WEIGHTS IMAGE...`: classify images with saved weights
(from `train`). IMAGE: a .npy array of one or more images, or a picture file (.png;
.jpg and others with Pillow), which is turned grey and resized to the model's size."""


def add_arguments(parser):
    parser.add_argument("weights", help="a weights file written by `train` (or models.save)")
    parser.add_argument("images", nargs="+", metavar="IMAGE",
                        help=".npy (float in [0, 1], or 8-bit integers), or .png/.jpg/... "
                             "(needs matplotlib)")
    parser.add_argument("--invert", choices=["auto", "yes", "no"], default="auto",
                        help="turn dark ink on a light background into the training data's "
                             "light-on-dark; auto: when the image border is light "
                             "(default: %(default)s)")
    parser.add_argument("--top", type=int, default=3, metavar="K",
                        help="show the K most likely classes (default: %(default)s)")
    parser.add_argument("--backend", choices=["numpy", "numba", "cuda"], default=None,
                        help="backend to run on (default: numpy)")


def run(args):
    import numpy as np

    from opgraph import models
    from ._cli import fail, number
    from .evaluate import describe, load_model

    number(args.top, "--top", minimum=1, integer=True)
    model, code = load_model(args.weights, args.backend)
    if model is None:
        return code
    invert = {"auto": "auto", "yes": True, "no": False}[args.invert]
    batches = []
    for path in args.images:  # read them all first: a bad file fails before any output
        try:
            batches.append((path,) + models.read_image(path, model.model_config["image_shape"],
                                                       invert))
        except (OSError, ValueError, ImportError) as e:
            return fail(e)
    print(f"weights: {args.weights} ({describe(model)})")
    for path, images, inverted in batches:
        classes, probs = models.predict(model, images)
        for i in range(len(images)):
            name = path if len(images) == 1 else f"{path}[{i}]"
            best = np.argsort(-probs[i], kind="stable")[:args.top]
            others = ", ".join(f"{int(c)}: {probs[i, c]:.3f}" for c in best)
            print(f"{name}: {int(classes[i])}  ({others})" + ("  [inverted]" if inverted else ""))
    return 0
