"""lthnb.notebook.setup_cell: committed notebooks without outputs, unknown parameters refused,
lthnb's errors as one line, and no TensorFlow start-up lines."""

from __future__ import annotations

import importlib
import inspect
import json
import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import nbclient
import nbformat
import papermill
import pytest
import yaml

import lthnb
from lthnb.notebook import git_filter, setup_cell
from lthnb.params import ParamsError, load_params

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = REPO / "notebooks" / "03_pruning_percent.ipynb"  # its first cells are cheap
TEST_PARAMS = yaml.safe_load((REPO / "params" / "test.yaml").read_text())

# --- the git filter ---


def _saved_by_jupyterlab() -> dict:
    """A notebook as JupyterLab saves it after running: outputs, counts and Lab's metadata."""
    return {
        "cells": [
            {"cell_type": "markdown", "id": "a1", "metadata": {}, "source": ["# Title"]},
            {
                "cell_type": "code",
                "execution_count": 3,
                "id": "b2",
                "metadata": {
                    "tags": ["parameters"],
                    "scrolled": True,
                    "jupyter": {"source_hidden": True},
                    "execution": {"iopub.execute_input": "2026-01-01T00:00:00Z"},
                },
                "outputs": [{"name": "stdout", "output_type": "stream", "text": ["hello\n"]}],
                "source": ['arch = "lenet"'],
            },
        ],
        "metadata": {
            "kernelspec": {
                "display_name": "Python 3 (ipykernel)",
                "language": "python",
                "name": "python3",
            },
            "language_info": {"name": "python", "version": "3.11.7", "mimetype": "text/x-python"},
            "widgets": {"application/vnd.jupyter.widget-state+json": {"state": {}}},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def _as_written(notebook_json: dict) -> str:
    return json.dumps(notebook_json, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def test_clean_strips_outputs_counts_and_jupyterlab_metadata():
    cleaned = json.loads(git_filter.clean_notebook(_as_written(_saved_by_jupyterlab())))
    code = cleaned["cells"][1]
    assert (code["outputs"], code["execution_count"]) == ([], None)
    assert code["metadata"] == {"tags": ["parameters"]} and code["id"] == "b2"
    assert cleaned["cells"][0] == _saved_by_jupyterlab()["cells"][0]
    assert cleaned["metadata"] == {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }


def test_clean_keeps_the_committed_notebooks_byte_for_byte():
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        text = git_filter.committed_text(path)
        assert git_filter.clean_notebook(text) == text, path.name


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '{"nbformat": 3, "worksheets": []}'])
def test_clean_stores_anything_else_as_it_is(text):
    assert git_filter.clean_notebook(text) == text


def _git(folder: Path, *arguments: str) -> str:
    command = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *arguments]
    return subprocess.run(command, cwd=folder, check=True, capture_output=True, text=True).stdout


def test_running_and_saving_a_notebook_leaves_nothing_to_commit(tmp_path):
    """Through git itself: `git add` stores the notebook cleaned; a later save with other
    outputs and Lab's kernel name is not a change."""
    _git(tmp_path, "init", "-q")
    shutil.copy(REPO / ".gitattributes", tmp_path / ".gitattributes")
    assert git_filter.install_git_filter(tmp_path) == tmp_path.resolve()
    saved = _saved_by_jupyterlab()
    (tmp_path / "x.ipynb").write_text(_as_written(saved))
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "notebook")
    stored = _git(tmp_path, "show", "HEAD:x.ipynb")
    assert stored == git_filter.clean_notebook(_as_written(saved))
    assert git_filter.committed_text(tmp_path / "x.ipynb") == stored
    saved["cells"][1]["outputs"][0]["text"] = ["another run\n"]
    saved["cells"][1]["execution_count"] = 7
    (tmp_path / "x.ipynb").write_text(_as_written(saved))
    # `git status` may list the file (its size changed) until it is added; git diff and
    # git add run the filter and find no change.
    assert _git(tmp_path, "diff") == ""
    _git(tmp_path, "add", "-A")
    assert _git(tmp_path, "status", "--porcelain") == ""


def test_this_clone_commits_notebooks_through_the_filter():
    if git_filter._git(["rev-parse", "--show-toplevel"], REPO) is None:
        pytest.skip("not a git clone")
    attribute = git_filter._git(["check-attr", "filter", "--", "notebooks/04_train.ipynb"], REPO)
    assert attribute.endswith(f": {git_filter.GIT_FILTER}"), attribute
    command = git_filter._git(["config", "--get", f"filter.{git_filter.GIT_FILTER}.clean"], REPO)
    assert command and "lthnb.notebook.git_filter clean" in command, (
        "run `make setup` to install the filter"
    )


# --- parameters a notebook was given ---


def _parameters_cell() -> str:
    cells = nbformat.read(NOTEBOOK, 4).cells
    return next(c.source for c in cells if "parameters" in c.metadata.get("tags", []))


def _run_cells(*sources: str) -> tuple[dict, set[str]]:
    """A notebook's globals after the snapshot cell and `sources`, and the snapshot."""
    namespace = {"__name__": "__main__", "In": [], "get_ipython": print}
    before = set(namespace)
    for source in sources:
        exec(source, namespace)
    namespace.pop("__builtins__")
    return namespace, before


def test_the_parameters_cell_gives_the_demo_parameters():
    namespace, before = _run_cells(_parameters_cell())
    demo = load_params(REPO / "params" / "demo.yaml")
    assert setup_cell.params_from_notebook(namespace, before) == demo


def test_an_injected_value_overrides_the_parameters_cell():
    namespace, before = _run_cells(_parameters_cell(), "rounds = 7\nlearning_rate = 0.01")
    params = setup_cell.params_from_notebook(namespace, before)
    assert (params.rounds, params.learning_rate) == (7, 0.01)


def test_papermill_naming_another_arch_brings_its_recipe_for_the_keys_left_out():
    """`-p arch resnet20 -p rounds 2`: the recipe's values, not the demo cell's, for the keys of
    resnet20's recipe the run did not give; the cell's values for the other keys."""
    injected = "# Parameters\narch = 'resnet20'\nrounds = 2\nbatch_size = 64\n"
    namespace, before = _run_cells(_parameters_cell(), injected)
    namespace["In"] = ["", "_before_parameters = set(globals())", _parameters_cell(), injected]
    params = setup_cell.params_from_notebook(namespace, before)
    demo = load_params(REPO / "params" / "demo.yaml")
    assert (params.arch, params.rounds, params.batch_size) == ("resnet20", 2, 64)
    assert (params.optimizer, params.learning_rate, params.momentum) == ("sgd", 0.1, 0.9)
    assert params.augmentation == ["crop", "flip"] and params.dense_units == []
    assert params.dataset == "cifar10"  # the recipe's data set: the run did not name one
    assert (params.output_dir, params.train_subset) == (demo.output_dir, demo.train_subset)
    # the same values typed into the cell in JupyterLab (no injected cell): the cell is the run
    namespace["In"] = ["", "_before_parameters = set(globals())", _parameters_cell()]
    assert setup_cell.params_from_notebook(namespace, before).batch_size == 64
    assert setup_cell.params_from_notebook(namespace, before).optimizer == demo.optimizer


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("learnin_rate = 0.1", r"^learnin_rate: unknown parameter; did you mean learning_rate\?"),
        (
            "bogus_key = 3\nroundz = 2",
            r"^bogus_key, roundz: unknown parameters; did you mean roundz -> rounds\?",
        ),
        ("rewind_epochs = 2", r"^rewind_epochs: no longer a parameter; the iteration clock"),
    ],
)
def test_a_name_the_notebook_does_not_know_is_refused(cell, message):
    namespace, before = _run_cells(_parameters_cell(), cell)
    with pytest.raises(ParamsError, match=message):
        setup_cell.params_from_notebook(namespace, before)


def test_modules_classes_functions_and_private_names_are_not_parameters():
    namespace, before = _run_cells(
        "import os\nfrom pathlib import Path\n_private = 1\nrounds = 3\nrun = len",
    )
    assert setup_cell.params_from_notebook(namespace, before).rounds == 3


def test_names_known_before_are_not_parameters():
    """Names in `before`: those of the snapshot, and those later cells defined (the tracker)."""
    namespace, before = _run_cells("figure = 1", _parameters_cell())
    before.add("figure")
    assert setup_cell.params_from_notebook(namespace, before) == load_params(
        REPO / "params" / "demo.yaml"
    )


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (_parameters_cell(), True),
        ("# Parameters\nrounds = 3\nlearnin_rate = 0.1\n", True),
        ("epochs, rounds = run_experiment(params)", False),
        ("figure = plots.accuracy(run)", False),
        ("%tb", False),
        ("columns = ['a']\nrounds[columns]", False),
    ],
)
def test_a_cell_that_only_assigns_values_counts_as_parameters(source, expected):
    assert setup_cell.assigns_only(source) is expected


def _notebook_of(*sources: str) -> nbformat.NotebookNode:
    cells = [nbformat.v4.new_code_cell(source) for source in sources]
    return nbformat.v4.new_notebook(
        cells=cells,
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    )


def test_setup_in_a_kernel_refuses_new_names_shows_one_line_and_keeps_tb(tmp_path):
    """One kernel: Setup, a later cell, a rerun of the parameters and Setup (JupyterLab's
    usual way), a misspelled line, %tb, and an error that is not lthnb's."""
    setup = "from lthnb import notebook\nparams = notebook.setup(globals(), _before_parameters)"
    executed = _notebook_of(
        "_before_parameters = set(globals())",
        "rounds = 1",
        setup,
        "figure = object()",
        "rounds = 2",
        setup + "\nprint('rounds', params.rounds)",
        "learnin_rate = 0.1",
        setup,
        "%tb",
        "raise ValueError('not from lthnb')",
    )
    client = nbclient.NotebookClient(
        executed,
        kernel_name="python3",
        allow_errors=True,
        timeout=120,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    outputs = [cell.outputs for cell in executed.cells]
    assert all(o.output_type != "error" for cell in outputs[:7] for o in cell), outputs[:7]
    assert outputs[5][0].text == "rounds 2\n"  # `figure` (defined by a later cell) is no parameter
    (brief,) = outputs[7]
    assert brief.ename == "ParamsError"
    assert brief.evalue.startswith("learnin_rate: unknown parameter; did you mean learning_rate?")
    assert len(brief.traceback) == 2 and "%tb" in brief.traceback[1]
    (full,) = outputs[8]
    assert full.ename == "ParamsError" and len(full.traceback) > 2
    assert "params_from_notebook" in "".join(full.traceback)
    (plain,) = outputs[9]
    assert plain.ename == "ValueError" and len(plain.traceback) > 2
    assert not [o for cell in outputs for o in cell if o.get("name") == "stderr"]


def test_every_lthnb_error_is_shown_briefly():
    """IPython hands `HANDLED_BASES` to the brief display: every lthnb error must derive from
    one of them, or it would arrive under its whole traceback."""
    errors = []
    for module in pkgutil.walk_packages(lthnb.__path__, "lthnb."):
        loaded = importlib.import_module(module.name)
        errors += [
            value
            for value in vars(loaded).values()
            if inspect.isclass(value)
            and issubclass(value, Exception)
            and not issubclass(value, Warning)  # notices are shown, not raised
            and value.__module__ == loaded.__name__
            and not value.__name__.startswith("_")  # private ones never leave lthnb
        ]
    assert {e.__name__ for e in errors} >= {"ParamsError", "RunFolderError", "PlotInputError"}
    for error in errors:
        assert issubclass(error, setup_cell.HANDLED_BASES), error
        assert setup_cell.is_lthnb_error(error("message")), error
    assert not setup_cell.is_lthnb_error(ValueError("message"))


def _notebook_with_parameter_line(line: str, folder: Path) -> Path:
    """A copy of NOTEBOOK whose parameters cell got `line`, as if typed in JupyterLab."""
    copied = nbformat.read(NOTEBOOK, 4)
    cell = next(c for c in copied.cells if "parameters" in c.metadata.get("tags", []))
    cell.source += "\n" + line
    path = folder / NOTEBOOK.name
    nbformat.write(copied, path)
    return path


def test_papermill_parameters_and_a_parameters_cell_line_are_checked(tmp_path):
    """papermill's `parameters=` is what -p, -y and -f become; the copy's parameters cell has a
    line added as in JupyterLab. Setup names both, as one line, and nothing is written."""
    run = tmp_path / "run"
    source = _notebook_with_parameter_line("dense_rat = 0.3", tmp_path)
    with pytest.raises(papermill.PapermillExecutionError) as failure:
        papermill.execute_notebook(
            str(source),
            str(tmp_path / "out.ipynb"),
            parameters={**TEST_PARAMS, "output_dir": str(run), "learnin_rate": 0.1},
            kernel_name="python3",
            cwd=str(REPO),
            progress_bar=False,
        )
    assert failure.value.ename == "ParamsError"
    assert failure.value.evalue.startswith(
        "dense_rat, learnin_rate: unknown parameters; "
        "did you mean dense_rat -> dense_rate, learnin_rate -> learning_rate?"
    )
    assert len(failure.value.traceback) == 2
    assert not run.exists()


def test_papermill_command_line_refuses_unknown_keys_of_f_p_and_y(tmp_path):
    run = tmp_path / "run"
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump({**TEST_PARAMS, "rewind_iterations": 5}))
    command = [
        *(sys.executable, "-m", "papermill", str(NOTEBOOK), str(tmp_path / "out.ipynb")),
        *("-f", str(params_file), "-p", "bogus_key", "3", "-y", "learnin_rate: 0.1"),
        *("-p", "output_dir", str(run), "-k", "python3", "--cwd", str(REPO)),
        "--no-progress-bar",
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode != 0
    assert (
        "ParamsError: bogus_key, learnin_rate, rewind_iterations: unknown parameters; "
        "did you mean learnin_rate -> learning_rate, rewind_iterations -> rewind_iteration?"
    ) in done.stderr
    assert not run.exists()


# --- TensorFlow's start-up lines ---

STARTUP = """\
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1796031596.196994    5663 port.cc:153] oneDNN custom operations are on. You may see \
slightly different numerical results. To turn them off, set `TF_ENABLE_ONEDNN_OPTS=0`.
I0000 00:00:1796031596.199764    5663 cudart_stub.cc:31] Could not find cuda drivers on your \
machine, GPU will not be used.
E0000 00:00:1796031600.547619    5663 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA \
error: Failed call to cuInit: UNKNOWN ERROR (303)
"""
REAL = """\
W0000 00:00:1796031600.000001    5663 allocator.cc:1] Allocation exceeds 10% of free memory.
E0000 00:00:1796031600.000002    5663 something.cc:2] a real error
"""


def test_startup_lines_are_dropped_and_real_ones_kept():
    assert setup_cell.filter_startup_lines(STARTUP + REAL) == REAL
    cuinit = STARTUP.splitlines(keepends=True)[-1]
    assert setup_cell.filter_startup_lines(cuinit) == cuinit  # a GPU machine's failure shows


def test_tensorflow_starts_without_startup_lines():
    script = (
        "from lthnb.notebook import setup_cell\n"
        "setup_cell.quiet_tensorflow_startup()\n"
        "import tensorflow as tf\n"
        "print(tf.reduce_sum(tf.ones(3)).numpy())\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    assert done.stdout == "3.0\n"
    for line in ("absl::InitializeLog", "oneDNN", "cuda drivers", "cuInit"):
        assert line not in done.stderr, done.stderr


def test_a_notice_of_what_was_rebuilt_shows_as_one_line_and_other_warnings_as_usual(capsys):
    import warnings

    from lthnb.runs.tables import notice

    original = warnings.showwarning
    try:
        setup_cell.show_notices_briefly()
        setup_cell.show_notices_briefly()  # a rerun of the Setup cell wraps it once
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            notice("ticket.keras is missing; exported the ticket again from state.npz")
            with pytest.warns(UserWarning, match="something else"):  # the usual path
                warnings.warn("something else", UserWarning, stacklevel=1)
    finally:
        warnings.showwarning = original
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["note: ticket.keras is missing; exported the ticket again from state.npz"]
