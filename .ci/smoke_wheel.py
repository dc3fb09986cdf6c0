"""Smoke test of the installed wheel beside PyPI's `ops` (run by .ci/run, from outside the
checkout, in a virtual environment holding both): each imports, works, and stays intact
when the other is uninstalled.

    python .ci/smoke_wheel.py dist/opgraph-*.whl
"""
import base64
import hashlib
import importlib.metadata as metadata
import os
import shutil
import subprocess
import sys
import zipfile

ENV_BIN = os.path.dirname(sys.executable)


def check(condition, what):
    if not condition:
        sys.exit(f"smoke test FAILED: {what}")
    print(f"ok: {what}")


def run(*argv):
    return subprocess.run(argv, capture_output=True, text=True, timeout=600)


def pip(command, name):
    extra = ["--yes"] if command == "uninstall" else []
    out = run(sys.executable, "-m", "pip", command, "--quiet", *extra, name)
    check(out.returncode == 0, f"pip {command} {name}")


def distribution_damaged(name):
    """The files of an installed distribution that are missing or differ from its RECORD
    (every file the distribution installed exists with its hash: an empty list)."""
    dist = metadata.distribution(name)
    bad = []
    for f in dist.files:
        if f.hash is None:
            continue
        path = f.locate()
        try:
            digest = hashlib.new(f.hash.mode, open(path, "rb").read()).digest()
        except OSError:
            bad.append(str(f))
            continue
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != f.hash.value:
            bad.append(str(f))
    return bad


def smoke_opgraph():
    code = r'''
import numpy as np
import opgraph
from opgraph import nn, optim, models
assert opgraph.ops.Add.__module__ == "opgraph.ops.elementwise"
assert opgraph.backends.get("numpy").name == "numpy"
(x, y), _ = opgraph.data.load_digits()
nn.manual_seed(0)
model = models.build("mlp")
opt = optim.SGD(model.parameters(), lr=0.1)
losses = []
for _ in range(5):   # a tiny training step, five times on one batch
    opt.zero_grad()
    loss = nn.CrossEntropyLoss()(model(opgraph.tensor(x[:64])), opgraph.tensor(y[:64]))
    loss.backward()
    opt.step()
    losses.append(loss.item())
assert losses[-1] < losses[0], losses
print("training losses", [round(v, 4) for v in losses])
'''
    out = run(sys.executable, "-c", code)
    check(out.returncode == 0, f"opgraph imports and trains: {out.stdout.strip()} {out.stderr}")
    demo = run(sys.executable, "-m", "opgraph", "demo")
    check(demo.returncode == 0 and "dloss/dw" in demo.stdout, "python -m opgraph demo")
    script = shutil.which("opgraph", path=ENV_BIN)
    version = run(script, "--version")
    check(version.stdout.strip() == f"opgraph {metadata.version('opgraph')}",
          f"opgraph --version: {version.stdout.strip()}")
    usage = run(script, "--help").stdout
    check(usage.startswith("usage: opgraph "), "the console script's usage line says opgraph")


def smoke_ops():
    out = run(sys.executable, "-c", "import ops, ops.model; from ops import CharmBase; "
                                    "print(ops.__file__)")
    check(out.returncode == 0 and "opgraph" not in out.stdout,
          f"PyPI's ops imports as itself: {out.stdout.strip()} {out.stderr}")
    check(not distribution_damaged("ops"), "every file of ops matches its RECORD")


def main(wheel):
    with zipfile.ZipFile(wheel) as archive:
        top = {name.split("/")[0] for name in archive.namelist()}
        names = archive.namelist()
    version = metadata.version("opgraph")
    check(top == {"opgraph", f"opgraph-{version}.dist-info"},
          f"the wheel holds one package, opgraph: {sorted(top)}")
    check(any(n.endswith(".dist-info/licenses/LICENSE") or n.endswith(".dist-info/LICENSE")
              for n in names), "the wheel carries the LICENSE")
    installed = {str(f).split("/")[0] for f in metadata.distribution("opgraph").files}
    check(not installed & {"ops", "backends"}, "no top-level ops or backends installed")
    smoke_ops()
    smoke_opgraph()
    check(not distribution_damaged("opgraph"), "every file of opgraph matches its RECORD")
    # either order of installing and uninstalling leaves the other package whole
    pip("uninstall", "ops")
    check(not distribution_damaged("opgraph"), "uninstalling ops leaves opgraph whole")
    smoke_opgraph()
    pip("install", "ops")
    smoke_ops()
    check(not distribution_damaged("opgraph"), "installing ops after opgraph leaves opgraph whole")
    pip("uninstall", "opgraph")
    smoke_ops()
    check(run(sys.executable, "-c", "import opgraph").returncode != 0, "opgraph is gone")
    print("smoke test passed")


if __name__ == "__main__":
    main(sys.argv[1])
