"""The notebooks: parameter cells agree with the params files, and each runs under papermill."""

from __future__ import annotations

import ast
import functools
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import papermill
import pytest
import yaml

from lthnb.notebook.git_filter import committed_text
from lthnb.params import PARAMETER_NAMES

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


@functools.cache
def _committed(path: Path) -> nbformat.NotebookNode:
    """The notebook as git would commit it (through the filter `make setup` installs)."""
    return nbformat.reads(committed_text(path), 4)


def _parameter_cell(path: Path) -> dict:
    cells = [c for c in _committed(path).cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{path.name} needs exactly one cell tagged `parameters`"
    values = {}
    for node in ast.parse(cells[0].source).body:
        assert isinstance(node, ast.Assign), f"{path.name}: the parameters cell only assigns"
        values[node.targets[0].id] = ast.literal_eval(node.value)
    return values


def test_every_notebook_exists_and_make_report_runs_them_all():
    names = [p.stem for p in NOTEBOOKS]
    assert names == [
        "01_dataset",
        "02_model",
        "03_pruning_percent",
        "04_train",
        "05_plot",
        "06_analysis",
        "07_stability",
    ]
    makefile = (REPO / "Makefile").read_text()
    assert f"NOTEBOOKS := {' '.join(names)}" in makefile


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameter_cell_holds_the_demo_values(notebook):
    """That it names every parameter in order is tests/test_sync.py's check."""
    values = _parameter_cell(notebook)
    assert values == yaml.safe_load((REPO / "params" / "demo.yaml").read_text())


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs_and_without_definitions(notebook):
    for cell in _committed(notebook).cells:
        if cell.cell_type != "code":
            continue
        assert cell.outputs == [] and cell.execution_count is None, (
            f"{notebook.name} would be committed with outputs; `make setup` installs the git "
            "filter that strips them"
        )
        source = "\n".join(
            line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!"))
        )
        definitions = [
            n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef | ast.ClassDef)
        ]
        assert not definitions, f"{notebook.name}: functions belong in lthnb/, not notebooks"


@pytest.fixture
def notebook_params(tiny_data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("LTHNB_HEADLESS", "1")
    params = yaml.safe_load((REPO / "params" / "test.yaml").read_text())
    return {**params, "data_dir": str(tiny_data_dir), "output_dir": str(tmp_path / "run")}


def _execute(name: str, params: dict, tmp_path: Path) -> Path:
    output = tmp_path / f"{name}.out.ipynb"
    papermill.execute_notebook(
        str(REPO / "notebooks" / f"{name}.ipynb"),
        str(output),
        parameters=params,
        kernel_name="python3",
        cwd=str(REPO),
        progress_bar=False,
    )
    return output


def test_preparation_notebooks_write_their_tables(notebook_params, tmp_path):
    for name in ("01_dataset", "02_model", "03_pruning_percent"):
        _execute(name, notebook_params, tmp_path)
    run = Path(notebook_params["output_dir"])
    provenance = json.loads((run / "dataset" / "provenance.json").read_text())
    assert provenance["source"].endswith("mnist.npz") and provenance["dataset"] == "mnist"
    balance = pd.read_csv(run / "dataset" / "class_balance.csv")
    assert balance["train"].sum() == 400 - 100 and balance["val"].sum() == 100
    assert balance["test"].sum() == 100
    layers = pd.read_csv(run / "model" / "layers.csv")
    assert layers.set_index("layer").loc["dense1", "prunable_weights"] == 784 * 20
    assert layers["weights"].sum() == 784 * 20 + 20 + 20 * 10 + 10 + 10 * 10 + 10
    totals = pd.read_csv(run / "model" / "schedule_totals.csv")
    assert list(totals["round"]) == [0, 1, 2]
    assert (run / "figures" / "samples.png").stat().st_size > 0
    assert (run / "figures" / "schedule.svg").stat().st_size > 0


def test_train_then_plot_under_papermill(notebook_params, tmp_path):
    """04 through papermill's command line (-f and -p), then 05 on the same run folder."""
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(notebook_params))
    command = [
        sys.executable,
        "-m",
        "papermill",
        str(REPO / "notebooks" / "04_train.ipynb"),
        str(tmp_path / "04.out.ipynb"),
        "-f",
        str(params_file),
        "-y",
        "controls: [reinit]",
        "-k",
        "python3",
        "--cwd",
        str(REPO),
        "--no-progress-bar",
    ]
    subprocess.run(command, check=True, capture_output=True, text=True)
    run = Path(notebook_params["output_dir"])
    rounds = pd.read_csv(run / "rounds.csv")
    assert list(zip(rounds["round"], rounds["kind"], strict=True)) == [
        (0, "ticket"),
        (1, "ticket"),
        (1, "reinit"),
        (2, "ticket"),
        (2, "reinit"),
    ]
    assert rounds["test_accuracy"].between(0, 1).all()
    executed = nbformat.read(tmp_path / "04.out.ipynb", 4)
    text = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert "rounds: 100%" in text  # text progress bars were recorded
    notebook_params["controls"] = ["reinit"]
    _execute("05_plot", notebook_params, tmp_path)
    for figure in (
        "accuracy_vs_remaining",
        "early_stop_vs_remaining",
        "validation_curves",
        "layer_remaining",
    ):
        assert (run / "figures" / f"{figure}.png").stat().st_size > 0
    _execute("06_analysis", notebook_params, tmp_path)  # one trial: no overlap between trials
    for figure in ("sign_changes", "start_magnitudes"):
        assert (run / "figures" / f"{figure}.png").stat().st_size > 0
    assert not (run / "figures" / "overlap_trials.png").exists()


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_papermill_infers_every_parameter(notebook):
    """papermill warns of 'unknown parameters' for lines it cannot parse (e.g. '=' in comments)."""
    inferred = papermill.inspect_notebook(str(notebook))
    assert tuple(inferred) == PARAMETER_NAMES


@pytest.mark.parametrize(
    ("override", "message"),
    [({"rounds": -1}, "rounds: -1 is too small"), ({"dense_rate": "fast"}, "dense_rate: 'fast'")],
)
def test_bad_override_stops_04_before_training(notebook_params, tmp_path, override, message):
    with pytest.raises(papermill.PapermillExecutionError) as failure:
        _execute("04_train", {**notebook_params, **override}, tmp_path)
    assert failure.value.ename == "ParamsError"
    assert message in failure.value.evalue
    assert not Path(notebook_params["output_dir"]).exists()  # nothing was trained or written
