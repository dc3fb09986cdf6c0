"""Where `opgraph.backends` and `opgraph.ops` come from.

The repository keeps the three layers side by side as top-level folders
(`backends/`, `opgraph/`, `ops/`); the wheel installs them as one package,
`opgraph`, with `opgraph/backends` and `opgraph/ops` inside it (setuptools'
package-dir in pyproject.toml). In a source checkout, and in an editable
install, which points at the checkout, the two folders sit beside this
package instead: bind them under the `opgraph.` names here, before anything
imports them, so that no top-level `backends` or `ops` module ever exists.
"""
import importlib.util
import os
import sys

SUBPACKAGES = ("backends", "ops")


def _checkout_root(package_dir):
    """The repository root when `package_dir` is the opgraph folder of a checkout, else None."""
    root = os.path.dirname(os.path.abspath(package_dir))
    if os.path.exists(os.path.join(package_dir, *SUBPACKAGES[:1])):
        return None  # installed: the subpackages live inside the package
    if not os.path.isfile(os.path.join(root, "pyproject.toml")):
        return None  # not a checkout (site-packages): never pick up a stranger's `ops`
    if all(os.path.isfile(os.path.join(root, name, "__init__.py")) for name in SUBPACKAGES):
        return root
    return None


def bind_subpackages(package, package_path):
    root = _checkout_root(package_path[0])
    if root is None:
        return
    for name in SUBPACKAGES:
        fullname = f"{package}.{name}"
        if fullname in sys.modules:
            continue
        folder = os.path.join(root, name)
        spec = importlib.util.spec_from_file_location(
            fullname, os.path.join(folder, "__init__.py"), submodule_search_locations=[folder])
        module = importlib.util.module_from_spec(spec)
        sys.modules[fullname] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[fullname]
            raise
        setattr(sys.modules[package], name, module)
