"""The run header that opens every report, and reports rendered without the parameters' input."""

from __future__ import annotations

import subprocess
from pathlib import Path

import nbformat
import yaml
from conftest import REPO

from lthnb.params import load_params
from lthnb.report.header import changed_parameters, code_version, cpu_support, run_header
from lthnb.report.render import render_html


def _row(header, label: str) -> str:
    return dict(header.rows)[label]


def test_the_header_names_the_commit_of_the_tree_it_ran_in_and_the_parameters_set():
    params = load_params(REPO / "params" / "demo.yaml")
    header = run_header(params, REPO)
    commit = subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    assert f"commit {commit}" in _row(header, "code")
    shown = _row(header, "parameters set")
    assert "rounds: 10" in shown and "trials: 2" in shown and "controls: [reinit]" in shown
    assert "arch:" not in shown and "batch_size" not in shown  # as the recipe has them
    assert yaml.safe_load(header.parameters) == params.to_dict()
    page = header._repr_html_()
    assert page.startswith("<table class='lthnb-run-header'>") and "<details>" in page
    assert "tensorflow 2.21" in _row(header, "libraries")


def test_parameters_set_are_those_that_differ_from_the_networks_recipe():
    assert changed_parameters(load_params(arch="conv2")) == {}
    changed = changed_parameters(load_params(arch="conv2", learning_rate=1e-3, rounds=4))
    assert changed == {"learning_rate": 1e-3, "rounds": 4}
    assert changed_parameters(load_params(arch="lenet", iterations=20000)) == {"iterations": 20000}


def test_the_code_line_flags_local_changes_and_trees_outside_git(tmp_path: Path):
    assert code_version(tmp_path).endswith("not a git checkout")

    def git(*arguments: str) -> None:
        subprocess.run(["git", *arguments], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "file.txt").write_text("one\n")
    git("add", "file.txt")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    clean = code_version(tmp_path)
    assert "commit " in clean and "local changes" not in clean
    (tmp_path / "file.txt").write_text("two\n")
    assert code_version(tmp_path).endswith("with local changes")


def test_cpu_support_reads_the_bfloat16_flags(tmp_path: Path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("flags\t: fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n")
    assert cpu_support(cpuinfo) == "AVX512-BF16, AMX-BF16"
    cpuinfo.write_text("flags\t: fpu avx2\n")
    assert cpu_support(cpuinfo).startswith("no bfloat16 instructions")
    assert cpu_support(tmp_path / "none").startswith("unknown")


def test_a_rendered_report_leaves_out_the_parameters_input_and_opens_with_the_header(
    tmp_path: Path,
):
    header = run_header(load_params(REPO / "params" / "demo.yaml"), REPO)
    notebook = nbformat.v4.new_notebook()
    parameters = nbformat.v4.new_code_cell("arch = 'lenet'  # network")
    parameters.metadata["tags"] = ["parameters"]
    injected = nbformat.v4.new_code_cell("rounds = 31415")
    injected.metadata["tags"] = ["injected-parameters"]
    setup = nbformat.v4.new_code_cell("run_header(params)")
    setup.outputs = [
        nbformat.v4.new_output(
            "display_data", {"text/html": header._repr_html_(), "text/plain": repr(header)}
        )
    ]
    notebook.cells = [parameters, injected, setup, nbformat.v4.new_code_cell("later = 1")]
    path = tmp_path / "report.ipynb"
    nbformat.write(notebook, path)
    page = render_html(path).read_text()
    assert "31415" not in page and "# network" not in page  # no parameter input
    assert "run_header" in page and "later" in page  # every other input stays
    assert page.index("lthnb-run-header") < page.index("later")
