"""The commands of issue 8: `python -m opgraph train | demo | graph`."""
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import opgraph
from opgraph.__main__ import main
from opgraph.commands import train as train_cmd

ROOT = Path(__file__).resolve().parents[1]


def _accuracy(out):
    m = re.search(r"test accuracy: ([\d.]+)% \((\d+)/(\d+)\)", out)
    assert m, out
    return float(m.group(1)) / 100, int(m.group(2)), int(m.group(3))


@pytest.fixture(autouse=True)
def _restore_default_backend():
    old = opgraph.get_default_backend()
    yield
    opgraph.set_default_backend(old)


def test_a_short_cnn_run_beats_chance_and_saves_loadable_weights(tmp_path, capsys):
    out_path = tmp_path / "w.npz"
    rc = main(["train", "--epochs", "2", "--subset", "800", "--lr", "0.005", "--out", str(out_path),
               "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0
    acc, correct, total = _accuracy(out)
    assert total == 359 and acc > 0.6, out           # chance is 0.1
    assert "800 train / 359 test images" in out and "CNN" in out
    # the saved weights reproduce the printed accuracy
    model = train_cmd.build_model("cnn", (1, 8, 8))
    model.load_state_dict(opgraph.load(out_path))
    (_, _), (xt, yt) = opgraph.data.load_digits()
    assert round(train_cmd.evaluate(model, xt, yt) * len(yt)) == correct


def test_the_default_run_reaches_95_percent(tmp_path, capsys):
    """The main job, exactly as the README runs it (it takes a few seconds)."""
    rc = main(["train", "--out", str(tmp_path / "w.npz"), "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0
    acc, _, _ = _accuracy(out)
    assert acc >= 0.95, out
    seconds = float(re.search(r"in ([\d.]+) s", out).group(1))
    assert seconds < 120, out


def test_mlp_with_sgd_and_curves(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    plot = tmp_path / "curves.png"
    rc = main(["train", "--model", "mlp", "--optimizer", "sgd", "--lr", "0.05", "--epochs", "2",
               "--batch-size", "64", "--out", "", "--plot", str(plot), "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0 and _accuracy(out)[0] > 0.3
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "saved the weights" not in out


def test_plot_without_matplotlib_says_how_to_get_it(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(train_cmd, "_check_matplotlib", lambda: False)
    rc = main(["train", "--epochs", "1", "--plot", str(tmp_path / "c.png"), "--out", ""])
    captured = capsys.readouterr()
    assert rc == 2 and "pip install 'opgraph[plot]'" in captured.err
    assert "test accuracy" not in captured.out        # it stops before training


def _learnable_mnist(directory, n_train=300, n_test=100, size=12, seed=0):
    """IDX files of a toy task: class k has a bright block at position k."""
    from tests.test_data import _write_idx
    rng = np.random.default_rng(seed)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        images = rng.integers(0, 60, size=(n, size, size)).astype(np.uint8)
        for i, k in enumerate(labels):
            r, c = divmod(int(k), 4)
            images[i, 3 * r:3 * r + 3, 3 * c:3 * c + 3] = 255
        _write_idx(directory / f"{prefix}-images-idx3-ubyte.gz", images, compress=True)
        _write_idx(directory / f"{prefix}-labels-idx1-ubyte.gz", labels, compress=True)


def test_train_on_mnist_idx_files(tmp_path, capsys):
    _learnable_mnist(tmp_path)
    rc = main(["train", "--data", str(tmp_path), "--epochs", "3", "--out", "", "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0 and "MNIST IDX files" in out and "300 train / 100 test" in out
    assert _accuracy(out)[0] > 0.5


def test_bad_data_path_is_a_clear_error(tmp_path, capsys):
    rc = main(["train", "--data", str(tmp_path / "nowhere"), "--out", ""])
    assert rc == 2 and "not a directory" in capsys.readouterr().err
    (tmp_path / "train-images-idx3-ubyte").write_text("not idx")
    rc = main(["train", "--data", str(tmp_path), "--out", ""])
    assert rc == 2 and "is not an IDX file" in capsys.readouterr().err


def test_bad_numbers_are_rejected(capsys):
    assert main(["train", "--epochs", "0", "--out", ""]) == 2
    assert "--epochs" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--backend", "tpu"])


def test_an_unavailable_backend_is_a_clear_error(monkeypatch, capsys):
    def unavailable(name):
        raise RuntimeError(f"backend {name!r} is unavailable: no GPU here")

    monkeypatch.setattr(opgraph, "set_default_backend", unavailable)
    assert main(["train", "--backend", "cuda", "--out", ""]) == 2
    assert "error: backend 'cuda' is unavailable: no GPU here" in capsys.readouterr().err
    assert main(["demo", "--backend", "cuda"]) == 2
    assert "unavailable" in capsys.readouterr().err


def test_train_on_another_backend_agrees_with_numpy(backend, capsys):
    if backend.name == "cuda" and os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        pytest.skip("training through Numba's CUDA simulator takes minutes; nn and optim on "
                    "the cuda backend are covered by test_nn and test_optim")
    args = ["train", "--epochs", "1", "--subset", "256", "--batch-size", "64", "--lr", "0.01",
            "--out", "", "--quiet"]
    assert main(args + ["--backend", "numpy"]) == 0
    want = _accuracy(capsys.readouterr().out)[0]
    assert main(args + ["--backend", backend.name]) == 0
    out = capsys.readouterr().out
    assert f"backend {backend.name}" in out
    assert abs(_accuracy(out)[0] - want) <= 0.02, out   # float rounding may flip a few


def test_demo_prints_values_gradients_and_the_tape(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "Tape with 5 ops:" in out
    for name in ("MatMul", "Add", "Tanh", "Mul", "SumDim"):
        assert name in out
    # the printed gradient of b against the formula: d/db sum(tanh(z)^2) = sum 2 tanh(z)(1-tanh^2)
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    h = np.tanh(x @ np.array([[0.5], [-1.0]]) + 0.25)
    want = (2 * h * (1 - h * h)).sum()
    got = float(re.search(r"dloss/db = tensor\(\[([-\d.e]+)\]\)", out).group(1))
    assert got == pytest.approx(want, rel=1e-5)
    loss = float(re.search(r"= ([\d.]+)\n", out).group(1))
    assert loss == pytest.approx((h * h).sum(), rel=1e-5)


def test_graph_command_writes_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert main(["graph", "--model", "cnn", "--out", str(tmp_path / "g.png")]) == 0
    out = capsys.readouterr().out
    assert "CNN forward: 11 ops" in out and "Conv2D" in out
    assert (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"


def test_graph_command_writes_dot_without_matplotlib(tmp_path, capsys):
    assert main(["graph", "--model", "mlp", "--backward", "--out", str(tmp_path / "g.dot")]) == 0
    assert "MLP backward" in capsys.readouterr().out
    text = (tmp_path / "g.dot").read_text()
    assert text.startswith('digraph "MLP backward') and "LinearBackward" not in text
    assert "MatMulBackward" in text and "grad 1.weight" in text


def test_python_dash_m_opgraph_runs_the_demo():
    result = subprocess.run([sys.executable, "-m", "opgraph", "demo"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "dloss/dw" in result.stdout
    help_text = subprocess.run([sys.executable, "-m", "opgraph", "train", "--help"], cwd=ROOT,
                               capture_output=True, text=True, timeout=120).stdout
    for flag in ("--backend", "--model", "--epochs", "--batch-size", "--lr", "--seed", "--data",
                 "--out", "--plot"):
        assert flag in help_text
