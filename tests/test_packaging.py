"""The distribution installs one top-level package, `opgraph`: the folders ops/ and
backends/ of the repository are opgraph.ops and opgraph.backends."""
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDER_OF = {"opgraph": "opgraph", "opgraph.ops": "ops", "opgraph.backends": "backends"}


def _config():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_package_dir_maps_the_layer_folders_into_opgraph():
    assert _config()["package-dir"] == FOLDER_OF


def test_every_subpackage_folder_is_listed_in_pyproject():
    found = set()
    for name, folder in FOLDER_OF.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((name,) + rel))
    assert set(_config()["packages"]) == found


def test_importing_opgraph_creates_no_top_level_ops_or_backends(tmp_path):
    code = ("import sys, opgraph, opgraph.ops, opgraph.backends\n"
            "opgraph.backends.get('numpy')\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('ops', 'backends')]\n"
            "assert not bad, bad\n"
            "assert opgraph.ops.Add is sys.modules['opgraph.ops.elementwise'].Add\n"
            "print(opgraph.ops.__name__, opgraph.backends.__name__)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, check=True)
    assert out.stdout.split() == ["opgraph.ops", "opgraph.backends"]


def test_a_foreign_top_level_ops_package_is_left_alone(tmp_path):
    # another distribution's `ops` (the Juju charm framework owns that name on PyPI)
    (tmp_path / "ops").mkdir()
    (tmp_path / "ops" / "__init__.py").write_text("CHARM = True\n")
    code = ("import ops, opgraph\n"
            "assert ops.CHARM and not hasattr(ops, 'Add')\n"
            "assert opgraph.ops.Add.__module__ == 'opgraph.ops.elementwise'\n")
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True)
