"""The README documents every parameter and the two commands a newcomer needs."""

from conftest import REPO

from lthnb.params import PARAMETER_NAMES

README = (REPO / "README.md").read_text()


def test_every_parameter_is_documented():
    missing = [name for name in PARAMETER_NAMES if f"`{name}`" not in README]
    assert not missing, f"README.md lacks the parameters {missing}"


def test_opens_with_the_demo_and_test_commands():
    first_block = README.split("```bash", 1)[1].split("```", 1)[0]
    assert "make demo" in first_block and "make test" in first_block


def test_ci_runs_the_readme_test_command():
    assert "make test" in (REPO / ".ci" / "run").read_text()
