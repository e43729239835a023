"""lthnb.params.sync: the copies of the schema agree with it, and `make sync` regenerates them."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import REPO

from lthnb.params.sync import (
    RESUMABLE_MARKER,
    TABLE_MARKER,
    Parameter,
    current_schema,
    main,
    render_parameters_cell,
    render_params_file,
    replace_marked,
    stale_message,
    sync,
)

# A sample of the copies, one of each kind, with values of their own (not the defaults).
SAMPLE = ["README.md", "params/conv2.yaml", "params/demo.yaml", "notebooks/04_train.ipynb"]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository holding copies of SAMPLE, for sync to rewrite."""
    for name in SAMPLE:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / name, tmp_path / name)
    return tmp_path


def edit(path: Path, *changes: tuple[str, str]) -> None:
    """Apply (pattern, replacement) regex substitutions to the file, each of which must match."""
    text = path.read_text(encoding="utf-8")
    for pattern, replacement in changes:
        text, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
        assert count, pattern
    path.write_text(text, encoding="utf-8")


def parameters_cell(path: Path) -> str:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return next("".join(c["source"]) for c in cells if c["metadata"].get("tags") == ["parameters"])


def test_the_repository_copies_agree_with_the_schema() -> None:
    stale = sync(REPO, current_schema(), write=False)
    assert not stale, stale_message(stale, REPO)


def test_check_names_the_stale_files_and_changes_nothing(repo: Path, capsys) -> None:
    edit(repo / "params/demo.yaml", (r"^momentum: .*\n", ""))
    before = {name: (repo / name).read_bytes() for name in SAMPLE}

    assert main(["--check", "--root", str(repo)]) == 1

    message = capsys.readouterr().err
    assert "params/demo.yaml" in message and "run `make sync` to regenerate them" in message
    assert "conv2" not in message
    assert {name: (repo / name).read_bytes() for name in SAMPLE} == before
    assert main(["--root", str(repo)]) == 0
    assert main(["--check", "--root", str(repo)]) == 0


def test_sync_restores_damaged_copies_with_their_own_values(repo: Path) -> None:
    original = {name: (repo / name).read_bytes() for name in SAMPLE}
    # Keys deleted (those of conv2's recipe among them), an unknown and a removed key added,
    # keys moved out of order.
    edit(
        repo / "params/conv2.yaml",
        (r"^(learning_rate|dense_units|data_dir|use_bias|compare_with): .*\n", ""),
        (r"^(trials: 5\n)(.*\n)", r"\2\1"),
        (r"\Z", "bogus: 1\nmax_epochs: 3\n"),
    )
    edit(repo / "params/demo.yaml", (r"^(arch: .*\n)((?:.*\n)*)", r"\2\1"))
    edit(
        repo / "notebooks/04_train.ipynb",
        (r'^\s*"(data_dir|optimizer|dense_units|use_bias) = .*",\n', ""),
        (r'("rounds = 10)  # [^"]*', r"\1  # a stale help\\n"),
        (r'("# Parameters [^"]*",\n)', r'\1   "bogus = 3\\n",\n'),
        (r'("seed = [^"]*",\n)(\s*"trials = [^"]*",\n)', r"\2\1"),
    )
    edit(
        repo / "README.md",
        (r"^\| `seed` \|.*\n", ""),
        (r"^\| `rounds` \| 0 \| .*\|$", "| `rounds` | 0 | stale |"),
        (r"`tensorboard`(<!-- end resumable -->)", r"`bogus`\1"),
    )

    stale = sync(repo, current_schema())

    assert sorted(str(path.relative_to(repo)) for path in stale) == sorted(SAMPLE)
    assert {name: (repo / name).read_bytes() for name in SAMPLE} == original
    conv2 = (repo / "params/conv2.yaml").read_text()
    assert conv2.startswith("# Conv-2 on CIFAR-10")
    assert "\ntrials: 5\n" in conv2 and "\nlearning_rate: 0.0002\n" in conv2  # not the default
    cell = parameters_cell(repo / "notebooks/04_train.ipynb")
    assert cell.startswith("# Parameters (papermill overrides them")
    assert "\nrounds = 10  # pruning rounds after the dense round 0" in cell
    assert sync(repo, current_schema()) == []


def test_values_keep_their_text_as_written() -> None:
    parameters = current_schema().parameters
    text = "# mine\ncontrols:\n  - reinit\nrounds: 3  # few\nlearning_rate: 2.0e-4\n"
    rendered = render_params_file(text, parameters)
    assert rendered.startswith("# mine\n")
    for entry in ("\nrounds: 3  # few\n", "\nlearning_rate: 2.0e-4\n", "\ncontrols:\n  - reinit\n"):
        assert entry in rendered
    cell = render_parameters_cell("learning_rate = 1.2e-3\narch = 'lenet'", parameters)
    assert cell.startswith("arch = 'lenet'  # lenet, conv2")
    assert "\nlearning_rate = 1.2e-3  # optimizer learning rate\n" in cell


def test_a_new_parameter_reaches_every_copy_and_a_removed_one_leaves(repo: Path) -> None:
    schema = current_schema()
    invented = Parameter("invented_knob", [7, 8], "an invented knob", "said at length")
    kept = [p for p in schema.parameters if p.name != "tensorboard"]
    changed = dataclasses.replace(
        schema, parameters=[*kept, invented], resumable=[*schema.resumable, invented.name]
    )

    assert len(sync(repo, changed)) == len(SAMPLE)

    for name in ("params/conv2.yaml", "params/demo.yaml"):
        text = (repo / name).read_text()
        assert text.splitlines()[-2:] == ["compare_with: []", "invented_knob: [7, 8]"]
        assert "tensorboard" not in text
    cell = parameters_cell(repo / "notebooks/04_train.ipynb").splitlines()
    assert cell[-2].startswith("compare_with = []  # ")
    assert cell[-1] == "invented_knob = [7, 8]  # an invented knob"
    assert not any(line.startswith("tensorboard") for line in cell)
    readme = (repo / "README.md").read_text()
    assert "\n| `invented_knob` | [7, 8] | an invented knob; said at length |\n" in readme
    assert "| `tensorboard` |" not in readme
    assert re.search(r"`compare_with`,?\s+`tensorboard`\s+and\s+`invented_knob`<!-- end", readme)


def test_the_readme_markers_are_required(repo: Path) -> None:
    readme = repo / "README.md"
    readme.write_text(readme.read_text().replace(f"<!-- end {TABLE_MARKER} -->", ""))
    with pytest.raises(ValueError, match=r"README\.md: lacks the markers <!-- parameters"):
        sync(repo, current_schema(), write=False)


def test_replace_marked_keeps_what_lies_outside_the_markers() -> None:
    begin, end = (
        f"<!-- {RESUMABLE_MARKER}: generated by make sync -->",
        f"<!-- end {RESUMABLE_MARKER} -->",
    )
    text = f"a {begin}old{end} b"
    assert replace_marked(text, RESUMABLE_MARKER, "new") == text.replace("old", "new")
