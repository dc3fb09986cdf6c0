"""The command line as a whole: one-line errors with exit code 2 before any long work,
the same exit codes everywhere, --version, evaluate / predict and opgraph.models,
progress output that suits logs."""
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import opgraph
from opgraph import models
from opgraph.__main__ import main
from opgraph.commands import _cli

ROOT = Path(__file__).resolve().parents[1]
HAS_MPL = __import__("importlib").util.find_spec("matplotlib") is not None


@pytest.fixture(autouse=True)
def _restore_default_backend():
    old = opgraph.get_default_backend()
    yield
    opgraph.set_default_backend(old)


def _one_line_error(capsys):
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, captured.err
    return captured.out, err


# (argv, words the error must contain); every case exits 2 before any training or solving
BAD_ARGUMENTS = [
    (["train", "--subset", "0"], ["--subset", "0"]),
    (["train", "--subset", "-5"], ["--subset", "-5"]),
    (["train", "--lr", "nan"], ["--lr", "nan"]),
    (["train", "--lr", "-0.1"], ["--lr", "-0.1"]),
    (["train", "--lr", "inf"], ["--lr", "inf"]),
    (["train", "--epochs", "0"], ["--epochs", "0"]),
    (["train", "--batch-size", "-3"], ["--batch-size", "-3"]),
    (["train", "--seed", "-1"], ["--seed", "-1"]),
    (["train", "--out", "/nonexistent/dir/w.npz"], ["/nonexistent/dir"]),
    (["train", "--out", "{tmp}"], ["is a folder"]),
    (["graph", "--batch-size", "0"], ["--batch-size", "0"]),
    (["graph", "--out", "/nonexistent/dir/g.dot"], ["/nonexistent/dir"]),
    (["mis", "petersen", "--plot", "/nonexistent/dir/p.png"], ["cannot write the plot"]),
    (["spinglass", "petersen", "--field", "nan"], ["--field", "nan"]),
    (["evaluate", "{tmp}/missing.npz"], ["missing.npz"]),
    (["predict", "{tmp}/missing.npz", "x.png"], ["missing.npz"]),
    (["predict", "{tmp}/missing.npz", "x.png", "--top", "0"], ["--top", "0"]),
    (["bench", "--only", "no-such-case"], ["no-such-case", "tropical max_plus"]),
    (["bench", "--threads", "0"], ["--threads", "0"]),
]
BAD_PLOTS = [  # need matplotlib to know its formats
    (["train", "--plot", "curves.txt"], ["curves.txt", ".txt"]),
    (["graph", "--out", "graph.xyz"], ["graph.xyz", ".xyz"]),
    (["mis", "petersen", "--plot", "p.txt"], ["p.txt", ".txt"]),
    (["spinglass", "petersen", "--plot", "p"], ["'p'", "no extension"]),
    (["evaluate", "w.npz", "--plot", "c.doc"], ["c.doc", ".doc"]),
]


CASES = BAD_ARGUMENTS + (BAD_PLOTS if HAS_MPL else [])


@pytest.mark.parametrize("argv, words", CASES, ids=[" ".join(argv) for argv, _ in CASES])
def test_bad_arguments_are_one_line_errors_with_exit_code_2(argv, words, capsys, tmp_path,
                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(argv) == 2
    out, err = _one_line_error(capsys)
    for word in words:
        assert word in err, err
    assert "training a" not in out and "graph:" not in out  # nothing ran
    assert not list(tmp_path.glob("*.png")) and not (tmp_path / "weights.npz").exists()


def test_the_checks_come_before_the_long_work(monkeypatch, capsys, tmp_path):
    from opgraph.commands import train
    monkeypatch.setattr(train, "load_data", lambda path: pytest.fail("loaded data"))
    assert main(["train", "--out", str(tmp_path / "no" / "w.npz")]) == 2
    from opgraph import tropical
    monkeypatch.setattr(tropical, "max_independent_set", lambda *a, **k: pytest.fail("solved"))
    assert main(["mis", "petersen", "--plot", str(tmp_path / "no" / "p.png")]) == 2
    capsys.readouterr()


def test_argparse_errors_are_one_line_too(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["train", "--subset", "abc"])
    assert exit.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--subset" in err and "'abc'" in err and "--help" in err


def test_every_help_lists_the_exit_codes(capsys):
    for argv in (["--help"], ["train", "--help"], ["mis", "--help"], ["predict", "--help"]):
        with pytest.raises(SystemExit) as exit:
            main(argv)
        assert exit.value.code == 0
        out = capsys.readouterr().out
        assert "exit codes" in out and "130" in out and "broken pipe" in out


def test_version_and_the_console_script_name(capsys, monkeypatch):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"opgraph {opgraph.__version__}"
    monkeypatch.setattr(sys, "argv", ["/usr/local/bin/opgraph"])
    with pytest.raises(SystemExit):
        main(["--help"])
    assert capsys.readouterr().out.startswith("usage: opgraph [-h]")
    monkeypatch.setattr(sys, "argv", [str(ROOT / "opgraph" / "__main__.py")])
    with pytest.raises(SystemExit):
        main(["--help"])
    assert capsys.readouterr().out.startswith("usage: python -m opgraph [-h]")


def test_ctrl_c_is_exit_130_without_a_traceback(monkeypatch, capsys):
    from opgraph.commands import demo

    def interrupted(args):
        raise KeyboardInterrupt
    monkeypatch.setattr(demo, "run", interrupted)
    assert main(["demo"]) == 130
    assert capsys.readouterr().err.strip() == "error: interrupted"


def test_a_closed_stdout_is_one_line_and_exit_2(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for argv in (["mis", "petersen"], ["demo"]):
        job = subprocess.Popen([sys.executable, "-m", "opgraph", *argv], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        job.stdout.close()  # the reader is gone before anything is written, as `| head -0`
        err = job.stderr.read().decode()
        job.stderr.close()
        assert job.wait(timeout=120) == 2, err
        assert err.strip() == ("error: standard output was closed before the command finished "
                               "(broken pipe)"), err


def test_the_number_check():
    for value, kw in [(0, dict(minimum=1)), (float("nan"), {}), (2.5, dict(integer=True)),
                      (True, {}), ("3", {}), (0.0, dict(above=0))]:
        with pytest.raises(_cli.UsageError, match="--x"):
            _cli.number(value, "--x", **kw)
    assert _cli.number(3, "--x", minimum=1, integer=True) == 3


# ------------------------------------------------------------- using what was trained
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "w.npz"
    old = opgraph.get_default_backend()
    try:
        assert main(["train", "--epochs", "2", "--subset", "600", "--lr", "0.01",
                     "--out", str(path), "--quiet"]) == 0
    finally:
        opgraph.set_default_backend(old)
    return path


def test_train_says_how_to_use_the_weights_and_evaluate_agrees(trained, tmp_path, capsys):
    assert main(["train", "--epochs", "1", "--subset", "100", "--out", str(tmp_path / "w.npz"),
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    accuracy = re.search(r"test accuracy: ([\d.]+)% \((\d+)/359\)", out)
    assert f"evaluate {tmp_path / 'w.npz'}" in out and "predict" in out
    assert "opgraph.models.load" in out
    assert main(["evaluate", str(tmp_path / "w.npz")]) == 0
    report = capsys.readouterr().out
    assert f"accuracy: {accuracy.group(1)}% ({accuracy.group(2)}/359)" in report
    rows = [line.split() for line in report.splitlines() if re.match(r"\s+\d+(\s+\d+){10}$", line)]
    confusion = np.array(rows, dtype=int)[:, 1:]
    assert confusion.shape == (10, 10) and confusion.sum() == 359
    assert np.trace(confusion) == int(accuracy.group(2))


def test_models_load_predict_and_evaluate(trained):
    model = models.load(trained)
    assert model.model_config == {"model": "cnn", "image_shape": (1, 8, 8), "num_classes": 10}
    assert not model.training
    (_, _), (x, y) = opgraph.data.load_digits()
    classes, probs = models.predict(model, x[:50])
    assert classes.dtype == np.int64 and probs.shape == (50, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
    with opgraph.no_grad():
        want = model(opgraph.tensor(x[:50])).numpy().argmax(axis=1)
    np.testing.assert_array_equal(classes, want)
    report = models.evaluate(model, x, y)
    assert report["total"] == 359 and report["confusion"].sum() == 359
    assert report["accuracy"] == np.trace(report["confusion"]) / 359 > 0.5
    # the file is an ordinary state dict for the classic path too
    again = models.build("cnn")
    again.load_state_dict(opgraph.load(trained))
    np.testing.assert_array_equal(models.predict(again, x[:50])[0], classes)


def test_models_load_of_a_plain_state_dict_finds_the_model(trained, tmp_path):
    plain = tmp_path / "plain.npz"
    for name in models.names():   # BatchNorm buffers included
        opgraph.save(models.build(name, num_classes=7), plain)
        assert models.load(plain).model_config == {"model": name, "image_shape": (1, 8, 8),
                                                   "num_classes": 7}
    opgraph.save(models.load(trained), plain)
    assert models.load(plain).model_config["model"] == "cnn"
    assert models.load(plain, model="cnn").model_config["model"] == "cnn"
    with pytest.raises(ValueError, match="fits none of \\['mlp'\\]"):
        models.load(plain, model="mlp")
    with pytest.raises(ValueError, match="holds a 'cnn' model, not 'mlp'"):
        models.load(trained, model="mlp")


def test_models_load_finds_the_model_in_a_nested_checkpoint(trained, tmp_path, capsys):
    model = models.load(trained)
    optimizer = opgraph.optim.Adam(model.parameters())
    checkpoint = tmp_path / "checkpoint.npz"
    opgraph.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 3},
                 checkpoint)
    again = models.load(checkpoint)
    assert again.model_config["model"] == "cnn"
    (_, _), (x, _) = opgraph.data.load_digits()
    np.testing.assert_array_equal(models.predict(again, x[:20])[0],
                                  models.predict(model, x[:20])[0])
    assert main(["evaluate", str(checkpoint)]) == 0
    assert "accuracy" in capsys.readouterr().out
    # no weights, or two state dicts that both fit: a one-line error saying what is there
    opgraph.save({"epoch": 3, "lr": 0.1}, tmp_path / "meta.npz")
    opgraph.save({"a": model.state_dict(), "b": model.state_dict()}, tmp_path / "two.npz")
    for name, message in (("meta.npz", "it holds no weights: 'epoch' (a number), 'lr'"),
                          ("two.npz", "several state dicts that fit a model: 'a', 'b'")):
        with pytest.raises(ValueError, match=re.escape(message)):
            models.load(tmp_path / name)
        assert main(["evaluate", str(tmp_path / name)]) == 2
        assert message in _one_line_error(capsys)[1]


def test_predict_refuses_non_finite_empty_and_broken_images(trained, tmp_path, capsys):
    np.save(tmp_path / "nan.npy", np.full((8, 8), np.nan, np.float32))
    inf = np.zeros((2, 8, 8), np.float32)
    inf[1, 3, 3] = np.inf
    np.save(tmp_path / "inf.npy", inf)
    np.save(tmp_path / "none.npy", np.zeros((0, 8, 8), np.float32))
    (tmp_path / "junk.npy").write_bytes(b"not an array")
    (tmp_path / "junk.png").write_bytes(b"not a picture")
    for name, message in (("nan.npy", "has 64 NaN or infinite pixels of 64"),
                          ("inf.npy", "has 1 NaN or infinite pixel of 128"),
                          ("none.npy", "holds no images"),
                          ("junk.npy", "is not a NumPy .npy file")):
        with pytest.raises(ValueError, match=re.escape(message)):
            models.read_image(tmp_path / name)
        assert main(["predict", str(trained), str(tmp_path / name)]) == 2
        assert message in _one_line_error(capsys)[1]
    if HAS_MPL:
        assert main(["predict", str(trained), str(tmp_path / "junk.png")]) == 2
        assert "cannot read" in _one_line_error(capsys)[1]


@pytest.mark.parametrize("call, message", [
    (lambda: models.build("resnet"), "unknown model 'resnet'"),
    (lambda: models.build("cnn", image_shape=(8, 8)), "image_shape"),
    (lambda: models.build("mlp", num_classes=1), "num_classes"),
    (lambda: models.save(opgraph.nn.Linear(2, 2), "x.npz"), "not made by models.build"),
    (lambda: models.predict(models.build("cnn"), np.zeros((2, 1, 28, 28))), r"\(2, 1, 28, 28\)"),
])
def test_models_bad_input(call, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises((ValueError, TypeError), match=message):
        call()


def test_predict_npy_and_pictures(trained, tmp_path, capsys):
    (_, _), (x, y) = opgraph.data.load_digits()
    np.save(tmp_path / "five.npy", x[:5, 0])                        # (N, H, W)
    np.save(tmp_path / "one.npy", (x[7] * 255).astype(np.uint8))    # (C, H, W), 8-bit
    np.save(tmp_path / "wrong.npy", np.zeros((3, 5)))
    model = models.load(trained)
    want, _ = models.predict(model, x[:8])
    assert main(["predict", str(trained), str(tmp_path / "five.npy"),
                 str(tmp_path / "one.npy")]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ".npy" in ln]
    got = [int(re.search(r": (\d)  \(", ln).group(1)) for ln in lines]
    assert got == list(want[:5]) + [want[7]]
    assert main(["predict", str(trained), str(tmp_path / "wrong.npy")]) == 2
    assert "(3, 5)" in _one_line_error(capsys)[1]
    assert main(["predict", str(trained), str(tmp_path / "notes.txt")]) == 2
    _one_line_error(capsys)
    if not HAS_MPL:
        return
    import matplotlib.pyplot as plt
    big = np.kron(x[3, 0], np.ones((6, 6)))            # 48x48, dark ink on white
    plt.imsave(tmp_path / "digit.png", 1 - big, cmap="gray", vmin=0, vmax=1)
    images, inverted = models.read_image(tmp_path / "digit.png")
    assert inverted and images.shape == (1, 1, 8, 8)
    np.testing.assert_allclose(images[0, 0], x[3, 0], atol=0.02)
    assert main(["predict", str(trained), str(tmp_path / "digit.png")]) == 0
    out = capsys.readouterr().out
    assert f"digit.png: {want[3]}  (" in out and "[inverted]" in out


def test_evaluate_refuses_weights_for_other_images(tmp_path, capsys):
    path = tmp_path / "w28.npz"
    models.save(models.build("mlp", image_shape=(1, 28, 28)), path)
    assert main(["evaluate", str(path)]) == 2
    err = _one_line_error(capsys)[1]
    assert "1x28x28" in err and "--data" in err


@pytest.mark.skipif(not HAS_MPL, reason="matplotlib is not installed")
def test_evaluate_plot_and_the_curves_title(trained, tmp_path, capsys, monkeypatch):
    assert main(["evaluate", str(trained), "--plot", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    from opgraph.commands import train
    titles = []
    real = train.plot_curves
    monkeypatch.setattr(train, "plot_curves",
                        lambda h, path, title=None: (titles.append(title), real(h, path, title)))
    assert main(["train", "--model", "mlp", "--epochs", "1", "--subset", "64", "--out", "",
                 "--plot", str(tmp_path / "curves.png")]) == 0
    out = capsys.readouterr().out
    accuracy = re.search(r"test accuracy: ([\d.]+)%", out).group(1)
    assert "MLP" in titles[0] and "numpy" in titles[0] and f"{float(accuracy):.1f}%" in titles[0]
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_training_output_in_a_log_is_one_line_per_epoch(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    job = subprocess.run([sys.executable, "-m", "opgraph", "train", "--epochs", "3",
                          "--subset", "64", "--model", "mlp", "--out", ""], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=300)
    assert job.returncode == 0, job.stderr
    assert "\r" not in job.stderr and "\r" not in job.stdout
    assert [ln.split()[1] for ln in job.stdout.splitlines() if ln.startswith("epoch")] == \
        ["1/3", "2/3", "3/3"]


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid:RuntimeWarning")
def test_a_diverging_run_stops_with_exit_1(capsys):
    assert main(["train", "--optimizer", "sgd", "--lr", "1e30", "--epochs", "3",
                 "--subset", "64", "--out", "", "--quiet"]) == 1
    out, err = _one_line_error(capsys)
    assert "training diverged" in err and "--lr" in err and "test accuracy" not in out


def test_backward_graph_nodes_show_shapes():
    w = opgraph.tensor(np.ones((3, 2)), requires_grad=True)
    x = opgraph.tensor(np.ones((4, 3)))
    g = opgraph.graph.to_networkx((x @ w).relu().sum(), params={"w": w}, backward=True)
    labels = [d["label"] for _, d in g.nodes(data=True) if d["kind"] == "tensor"]
    assert "grad w\n(3, 2) float64" in labels
    assert all(re.search(r"\(\d*(, \d+)*,?\)", label) for label in labels), labels


def test_mis_plot_shows_weights_and_spinglass_plot_coupling_signs(monkeypatch, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from opgraph.commands import mis, spinglass
    calls = []
    monkeypatch.setattr(mis, "draw", lambda *a, **k: calls.append((a, k)))
    monkeypatch.setattr(spinglass, "draw", lambda *a, **k: calls.append((a, k)))
    plot = str(tmp_path / "p.png")
    assert main(["mis", "cycle:5", "--plot", plot]) == 0
    assert calls[-1][1]["notes"] is None                       # all weights 1: nothing to add
    assert main(["mis", "cycle:5", "--random-weights", "2", "--plot", plot]) == 0
    out = capsys.readouterr().out
    weights = dict(item.split(":") for item in out.split("weights: ")[1].splitlines()[0].split())
    assert calls[-1][1]["notes"] == {int(v): w for v, w in weights.items()}
    edges = tmp_path / "g.txt"
    edges.write_text("0 1 1\n1 2 -1\n2 0 2\n")
    assert main(["spinglass", str(edges), "--plot", plot]) == 0
    kwargs = calls[-1][1]
    graph = calls[-1][0][0]
    color = {frozenset(e): c for e, c in zip(graph.edges, kwargs["edge_colors"])}
    width = {frozenset(e): w for e, w in zip(graph.edges, kwargs["edge_widths"])}
    ab, bc, ca = frozenset((0, 1)), frozenset((1, 2)), frozenset((2, 0))
    assert color[ab] == color[ca] != color[bc]                 # J = 1 and 2 vs J = -1
    assert width[ca] > width[ab] == width[bc]                  # |J| = 2 drawn thicker
    assert any("J < 0" in entry[0] for entry in kwargs["legend"])


class _Stream:
    def __init__(self, terminal):
        self.text, self.terminal = "", terminal

    def write(self, text):
        self.text += text

    def flush(self):
        pass

    def isatty(self):
        return self.terminal


def _feed(progress):
    progress("compile", 0, 1, "Numba compiles the contraction kernels (first run only)")
    progress("compile", 1, 1)
    for k in range(5):
        progress("order", k, 4, "largest 2^8")
    for k in range(4):
        progress("contract", k, 3)


def test_solver_progress_in_a_log_writes_nothing_but_keeps_the_compile_notes():
    from opgraph.commands._solver_cli import Progress
    stream = _Stream(terminal=False)
    progress = Progress(stream)
    _feed(progress)
    assert stream.text == "" and not progress.bars
    assert progress.compiled == ["Numba compiles the contraction kernels (first run only)"]


def test_solver_progress_on_a_terminal_draws_bars_and_closes_them():
    from opgraph.commands._solver_cli import Progress
    stream = _Stream(terminal=True)
    progress = Progress(stream)
    _feed(progress)
    assert "Numba compiles" in stream.text and "contraction order" in stream.text
    assert "\r" in stream.text and not progress.bars


def test_mis_and_spinglass_say_when_numba_compiled_and_keep_stderr_for_errors(capsys,
                                                                            monkeypatch):
    from opgraph.commands import _solver_cli
    real = _solver_cli.Progress

    def compiling(stream=None):  # as on a first run with --backend numba
        hook = real(stream)
        hook("compile", 0, 1, "Numba compiles the contraction kernels (first run only)")
        return hook
    monkeypatch.setattr(_solver_cli, "Progress", compiling)
    assert main(["mis", "grid:3x3"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""                      # not a terminal: nothing on stderr
    assert "compile: Numba compiles the contraction kernels (first run only); the time " \
        "includes it" in captured.out
    assert main(["spinglass", "grid:3x3", "--quiet"]) == 0
    assert capsys.readouterr().err == ""
    assert main(["mis", "complete:40"]) == 1       # refused: the error alone, on one line
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
