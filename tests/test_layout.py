"""The package's layout: folders by concern whose imports only go down, and docs that name only
modules and objects that exist."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest
from conftest import REPO

PACKAGE = REPO / "lthnb"
# Bottom to top. A module may import its own folder and any folder of a lower layer; the
# registries at the bottom are declarative, so params can read them without TensorFlow.
LAYERS = {
    "data": 0,
    "nets": 0,
    "pruning": 0,
    "controls": 1,  # a control's start reads weights by the names lthnb.nets.names defines
    "params": 2,
    "notebook": 3,
    "runs": 3,
    "training": 4,
    "lottery": 5,
    "analysis": 6,
    "report": 7,
}
MAX_MODULE_LINES = 380  # "about 350": a module past it has two jobs to split


def _modules() -> list[Path]:
    return sorted(path for path in PACKAGE.rglob("*.py") if path.parent != PACKAGE)


def _runtime_imports(tree: ast.Module) -> list[str]:
    """Every lthnb module imported at run time (imports for type checking only do not count)."""
    skipped = {
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for statement in node.body
        for child in ast.walk(statement)
    }
    names = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lthnb."):
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names += [alias.name for alias in node.names if alias.name.startswith("lthnb.")]
    return names


def test_every_module_sits_in_a_folder_of_the_layering():
    folders = {path.parent.name for path in _modules()}
    assert folders == set(LAYERS), "a new folder needs its place in LAYERS (and the README)"
    assert [path.name for path in PACKAGE.glob("*.py")] == ["__init__.py"]


@pytest.mark.parametrize("path", _modules(), ids=lambda path: f"{path.parent.name}/{path.name}")
def test_imports_only_go_down_the_layers(path: Path):
    folder = path.parent.name
    for name in _runtime_imports(ast.parse(path.read_text())):
        target = name.split(".")[1]
        assert target == folder or LAYERS[target] < LAYERS[folder], (
            f"{folder}/{path.name} imports {name}: {target} (layer {LAYERS[target]}) is not "
            f"below {folder} (layer {LAYERS[folder]})"
        )


def test_the_layering_check_catches_an_upward_import():
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "from lthnb.report import figures\n"
        "if TYPE_CHECKING:\n    from lthnb.lottery import sweep\n"
        "def f():\n    import lthnb.training.engine\n"
    )
    assert _runtime_imports(tree) == ["lthnb.report", "lthnb.training.engine"]


@pytest.mark.parametrize("folder", sorted(LAYERS))
def test_each_folder_says_what_it_is_for(folder: str):
    docstring = ast.get_docstring(ast.parse((PACKAGE / folder / "__init__.py").read_text()))
    assert docstring and "import" in docstring.lower(), f"{folder}/__init__.py: what it imports"


def test_no_module_has_grown_past_one_job():
    long = {
        str(path.relative_to(PACKAGE)): count
        for path in _modules()
        if (count := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"split these along the line where their jobs meet: {long}"


DOCS = ("README.md", "docs/REPRODUCTION.md", "Makefile", ".gitattributes", "pyproject.toml")
MENTION = re.compile(r"\blthnb(?:[./][A-Za-z_][A-Za-z0-9_]*)+")


def _mentions() -> list[tuple[str, str]]:
    return sorted(
        {(doc, match) for doc in DOCS for match in MENTION.findall((REPO / doc).read_text())}
    )


def _exists(mention: str) -> bool:
    """A path under the repository, or a module (and maybe an object in it) one can import."""
    if "/" in mention:
        return any((REPO / f"{mention}{suffix}").exists() for suffix in ("", ".py"))
    parts = mention.split(".")
    for split in range(len(parts), 0, -1):
        try:
            found = importlib.import_module(".".join(parts[:split]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[split:]:
            if not hasattr(found, attribute):
                return False
            found = getattr(found, attribute)
        return True
    return False


def test_the_docs_name_only_modules_and_objects_that_exist():
    missing = [f"{doc}: {mention}" for doc, mention in _mentions() if not _exists(mention)]
    assert len(_mentions()) > 10 and not missing, missing


def test_the_existence_check_refuses_what_is_not_there():
    assert _exists("lthnb.lottery.sweep.run_sweep") and _exists("lthnb/runs/paths.py")
    assert not _exists("lthnb.masked_model") and not _exists("lthnb.lottery.sweep.no_such")
    assert not _exists("lthnb/results.py")


def test_the_readme_maps_every_folder():
    development = (REPO / "README.md").read_text().split("## Development", 1)[1]
    for folder in LAYERS:
        assert f"`lthnb/{folder}/`" in development, folder
