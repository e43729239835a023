"""The README gives the two commands a newcomer needs (its parameter table is generated from the
schema and checked by tests/test_sync.py)."""

from conftest import REPO

README = (REPO / "README.md").read_text()


def test_opens_with_the_demo_and_test_commands():
    first_block = README.split("```bash", 1)[1].split("```", 1)[0]
    assert "make demo" in first_block and "make test" in first_block


def test_ci_runs_the_readme_test_command():
    assert "make test" in (REPO / ".ci" / "run").read_text()
