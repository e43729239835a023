"""environment.yml (conda) and pyproject.toml (pip) must list the same packages and pins."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest
import yaml
from conftest import REPO
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

PYPROJECT = REPO / "pyproject.toml"
ENVIRONMENT = REPO / "environment.yml"
# Extras that environment.yml includes; `cuda` stays a manual `pip install -e ".[cuda]"`.
ENV_EXTRAS = ("dev",)


def pyproject() -> dict[str, Any]:
    return tomllib.loads(PYPROJECT.read_text())


def environment() -> dict[str, Any]:
    return yaml.safe_load(ENVIRONMENT.read_text())


def requirements(lines: list[str]) -> dict[str, tuple[frozenset[str], SpecifierSet, str]]:
    """{normalised name: (extras, pins, marker)}; a name listed twice is an error."""
    found: dict[str, tuple[frozenset[str], SpecifierSet, str]] = {}
    for line in lines:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name not in found, f"{name} is listed twice"
        found[name] = (
            frozenset(requirement.extras),
            requirement.specifier,
            str(requirement.marker or ""),
        )
    return found


def pip_section(env: dict[str, Any]) -> list[str]:
    sections = [item["pip"] for item in env["dependencies"] if isinstance(item, dict)]
    assert len(sections) == 1, "environment.yml needs exactly one `pip:` list"
    return [str(line) for line in sections[0]]


def pyproject_lines(project: dict[str, Any]) -> list[str]:
    optional = project["project"].get("optional-dependencies", {})
    return project["project"]["dependencies"] + [
        line for extra in ENV_EXTRAS for line in optional[extra]
    ]


def differences(pip_lines: list[str], env_lines: list[str]) -> list[str]:
    """Human-readable differences between the two package lists (empty: they agree)."""
    wanted, have = requirements(pip_lines), requirements(env_lines)
    problems = [f"{name}: in pyproject.toml only" for name in sorted(set(wanted) - set(have))]
    problems += [f"{name}: in environment.yml only" for name in sorted(set(have) - set(wanted))]
    problems += [
        f"{name}: pyproject.toml has {wanted[name]}, environment.yml has {have[name]}"
        for name in sorted(set(wanted) & set(have))
        if wanted[name] != have[name]
    ]
    return problems


def env_requirement_lines() -> list[str]:
    return [line for line in pip_section(environment()) if not line.startswith("-")]


def test_environment_yml_basics() -> None:
    env = environment()
    assert env["name"] == "lthnb"
    assert env["channels"] == ["conda-forge"]
    conda = [item for item in env["dependencies"] if isinstance(item, str)]
    assert conda == ["python=3.11", "pip"]


def test_environment_python_satisfies_requires_python() -> None:
    requires = SpecifierSet(pyproject()["project"]["requires-python"])
    conda = [item for item in environment()["dependencies"] if isinstance(item, str)]
    python = next(item.split("=", 1)[1] for item in conda if item.startswith("python="))
    assert Version(python) in requires


def test_environment_installs_the_package_itself_editable() -> None:
    options = [line for line in pip_section(environment()) if line.startswith("-")]
    assert options == ["-e ."]


def test_package_lists_agree() -> None:
    assert differences(pyproject_lines(pyproject()), env_requirement_lines()) == []


def test_pins_are_kept_in_environment_yml() -> None:
    env = requirements(env_requirement_lines())
    assert str(env["tensorflow"][1]) == "==2.21.*"
    assert str(env["tf-keras"][1]) == "==2.21.*"
    assert str(env["tensorflow-model-optimization"][1]) == "==0.8.*"
    assert {"pytest", "ruff"} <= set(env)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda pip, env: (pip + ["rich"], env), "rich: in pyproject.toml only"),
        (lambda pip, env: (pip, env + ["Rich>=13"]), "rich: in environment.yml only"),
        (
            lambda pip, env: (pip, [line.replace("0.8.*", "0.7.*") for line in env]),
            "tensorflow-model-optimization: pyproject.toml has",
        ),
        (lambda pip, env: (pip, [line for line in env if line != "ruff"]), "ruff: in pyproject"),
    ],
    ids=["added-to-pyproject", "added-to-environment", "pin-changed", "dev-extra-dropped"],
)
def test_a_one_sided_change_is_caught(change, expected: str) -> None:
    pip, env = change(pyproject_lines(pyproject()), env_requirement_lines())
    assert any(problem.startswith(expected) for problem in differences(pip, env))


def test_names_are_normalised() -> None:
    assert differences(["PyYAML", "tf_keras==2.21.*"], ["pyyaml", "TF.Keras==2.21.*"]) == []
