"""Write opgraph/datasets/digits.npz (and its attribution file) from scikit-learn's
copy of the UCI optical-recognition handwritten digits.

    python scripts/make_digits.py

scikit-learn is needed only here; opgraph itself reads the .npz with NumPy.
The train/test split is fixed: a stratified split with a seeded permutation,
20% of each class for the test set (1,438 train / 359 test images). The file
is deterministic: running the script again writes the same arrays.
"""
import argparse
import pathlib

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "opgraph" / "datasets"
SEED = 20240601
TEST_FRACTION = 0.2

LICENSE = """\
opgraph/datasets/digits.npz
===========================

Optical Recognition of Handwritten Digits
E. Alpaydin and C. Kaynak, 1998.
UCI Machine Learning Repository. https://doi.org/10.24432/C50P49
https://archive.ics.uci.edu/dataset/80/optical+recognition+of+handwritten+digits

Licensed under the Creative Commons Attribution 4.0 International licence
(CC BY 4.0): https://creativecommons.org/licenses/by/4.0/

The 1,797 images (8x8 pixels, integer grey levels 0..16, 10 classes) are the
copy that scikit-learn ships as sklearn.datasets.load_digits (the test part
of the UCI set). Changes made for opgraph: the images are stored as uint8
arrays of shape (N, 8, 8) with uint8 labels, and split once into a fixed
training set ({n_train} images) and test set ({n_test} images), stratified by
class, by scripts/make_digits.py (seed {seed}). No pixel values were changed.

Arrays in the file: train_images, train_labels, test_images, test_labels.
"""


def make_split(labels, seed=SEED, test_fraction=TEST_FRACTION):
    """Indices (train, test): per class, a seeded shuffle and the first
    round(test_fraction * count) images go to the test set."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        n_test = int(round(test_fraction * len(idx)))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    train, test = np.concatenate(train), np.concatenate(test)
    # interleave the classes: a seeded permutation of each part
    return train[rng.permutation(len(train))], test[rng.permutation(len(test))]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=pathlib.Path, default=OUT_DIR)
    args = parser.parse_args(argv)
    from sklearn.datasets import load_digits  # only this script needs scikit-learn

    digits = load_digits()
    images = digits.images.astype(np.uint8)
    labels = digits.target.astype(np.uint8)
    assert images.shape == (1797, 8, 8) and np.array_equal(images, digits.images)
    train, test = make_split(labels)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out_dir / "digits.npz",
                        train_images=images[train], train_labels=labels[train],
                        test_images=images[test], test_labels=labels[test])
    (args.out_dir / "DIGITS_LICENSE.txt").write_text(
        LICENSE.format(n_train=len(train), n_test=len(test), seed=SEED))
    print(f"wrote {args.out_dir / 'digits.npz'}: {len(train)} train, {len(test)} test images")


if __name__ == "__main__":
    main()
