"""Every ```python block in README.md and docs/*.md runs, and docs/ops.md is current.

Each Markdown file is one test: its python blocks run in order in one shared
namespace (so a later block can use what an earlier one defined), in a fresh
temporary directory, with the default backend restored afterwards.

Opting out: put the marker

    <!-- docs-test: skip -->

on the line just before the opening fence of a block (blank lines between are
allowed). Use it only for code that cannot run here: training for minutes,
GPU-only code, downloads. Blocks in other languages (```bash, ```text) never run.
"""
import importlib.util
import re
import traceback
from pathlib import Path

import pytest

import opgraph

ROOT = Path(__file__).resolve().parents[1]
SKIP_MARKER = "<!-- docs-test: skip -->"
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)")


def python_blocks(text):
    """[(first line number, code, skipped)] of the ```python blocks of a Markdown text."""
    lines = text.splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang = m.groups()
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            j += 1
        if lang.lower() in ("python", "py", "python3"):
            k = i - 1
            while k >= 0 and not lines[k].strip():
                k -= 1
            skipped = k >= 0 and lines[k].strip() == SKIP_MARKER
            body = [ln[len(indent):] if ln.startswith(indent) else ln for ln in lines[i + 1:j]]
            blocks.append((i + 2, "\n".join(body) + "\n", skipped))
        i = j + 1
    return blocks


def markdown_files():
    return [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))


def run_blocks(path, text=None):
    """Run the blocks of one file in one namespace; raises AssertionError naming the block."""
    text = path.read_text() if text is None else text
    namespace = {"__name__": "__docs__"}
    ran = 0
    for line, code, skipped in python_blocks(text):
        if skipped:
            continue
        try:
            # padded so that traceback line numbers are the Markdown file's line numbers
            exec(compile("\n" * (line - 1) + code, str(path.name), "exec"), namespace)
        except Exception:
            raise AssertionError(f"the python block at {path.name} line {line} failed:\n"
                                 f"{traceback.format_exc()}") from None
        ran += 1
    return ran


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    old = opgraph.get_default_backend()
    yield tmp_path
    opgraph.set_default_backend(old)


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: p.name)
def test_markdown_python_blocks_run(path, sandbox):
    run_blocks(path)


def test_the_teaching_docs_have_code_that_runs():
    for name in ("tutorial.md", "tape.md", "custom_ops.md", "custom_backend.md"):
        blocks = python_blocks((ROOT / "docs" / name).read_text())
        assert len([b for b in blocks if not b[2]]) >= 3, name


def test_block_extraction_and_the_skip_marker(tmp_path):
    md = ("text\n```python\nx = 1\n```\n\n<!-- docs-test: skip -->\n\n```python\n"
          "raise SystemExit('must not run')\n```\n```bash\nexit 1\n```\n"
          "  ```python\n  y = x + 1\n  ```\n")
    blocks = python_blocks(md)
    assert [(line, skipped) for line, _, skipped in blocks] == [(3, False), (9, True), (15, False)]
    assert blocks[2][1] == "y = x + 1\n"
    assert run_blocks(tmp_path / "ok.md", md) == 2
    with pytest.raises(AssertionError, match=r"(?s)bad.md line 4 failed.*\"bad.md\", line 4.*ZeroDivisionError"):
        run_blocks(tmp_path / "bad.md", "\n\n```python\n1 / 0\n```\n")


def test_op_reference_is_generated_from_the_current_docstrings():
    spec = importlib.util.spec_from_file_location("gen_op_reference",
                                                  ROOT / "scripts" / "gen_op_reference.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    expected = gen.render()
    current = (ROOT / "docs" / "ops.md").read_text()
    assert current == expected, ("docs/ops.md is stale: run python scripts/gen_op_reference.py "
                                 "and commit docs/ops.md")
    from opgraph.operation import Operation
    from opgraph import ops
    for name in ("Add", "MatMul", "Conv2D", "Einsum", "CrossEntropy"):
        assert issubclass(getattr(ops, name), Operation)
        assert f"### {name}\n" in current
        assert getattr(ops, name).__doc__.splitlines()[0].strip() in current


LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_links_between_the_pages_resolve():
    """Every relative link of README.md and docs/*.md names a file of the repository."""
    broken = []
    for path in markdown_files():
        for target in LINK.findall(path.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue  # a web address, or an anchor on the same page
            file = (path.parent / target.split("#")[0]).resolve()
            if not file.exists() or ROOT not in file.parents:
                broken.append(f"{path.name}: {target}")
    assert not broken, broken


def test_readme_opens_with_the_two_commands_and_links_every_docs_page():
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```bash\n", 1)[1].split("```", 1)[0]
    assert first_block.splitlines()[0].startswith(
        "pip install -e '.[dev]' && python -m opgraph train")
    assert first_block.splitlines()[1].startswith("python -m pytest -q")
    index = (ROOT / "docs" / "README.md").read_text()
    for page in sorted((ROOT / "docs").glob("*.md")):
        assert f"(docs/{page.name})" in readme, f"README.md does not link docs/{page.name}"
        if page.name != "README.md":
            assert f"({page.name})" in index, f"docs/README.md does not list {page.name}"
    for picture in re.findall(r"!\[[^]]*\]\(([^)]+)\)", readme):
        assert (ROOT / picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", picture
