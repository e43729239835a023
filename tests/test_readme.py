"""The README gives the two commands a newcomer needs (its parameter table is generated from the
schema and checked by tests/test_sync.py)."""

from conftest import REPO

README = (REPO / "README.md").read_text()


def test_opens_with_the_demo_and_test_commands():
    first_block = README.split("```bash", 1)[1].split("```", 1)[0]
    assert "make demo" in first_block and "make test" in first_block


def test_ci_runs_the_readme_test_command():
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_the_readme_builder_is_a_network_lthnb_trains(
    tmp_path, monkeypatch, tiny_params, tiny_splits
):
    """The README's own builder, as a user would save it: a module on the path, named by arch."""
    from conftest import run_tiny

    from lthnb.nets.prunable import layer_kinds
    from lthnb.nets.weights import get_weights

    section = README.split("### Your own network", 1)[1]
    code = section.split("```python", 1)[1].split("```", 1)[0]
    (tmp_path / "mynets.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    params = tiny_params.replace(arch="mynets:small_resnet", rounds=1, iterations=10)
    assert "-p arch mynets:small_resnet" in section
    evaluations, rounds = run_tiny(params, tiny_splits)
    assert sorted(rounds["round"].unique()) == [0, 1]
    ticket = params.run_dir / "trials" / "trial_000" / "ticket.keras"
    import tf_keras

    model = tf_keras.models.load_model(ticket, compile=False)
    assert set(layer_kinds(model).values()) == {"conv", "output"}
    assert any(name.endswith("moving_variance") for name in get_weights(model))


def test_the_readme_weight_counts_of_open_lths_networks_are_the_built_models():
    """The architecture table's counts for resnet20 and vgg16 (32x32x3) come from the models."""
    import re

    from lthnb.nets.build import build_model
    from lthnb.params import load_params

    def trainable(arch: str) -> int:
        model = build_model(load_params(arch=arch), (32, 32, 3), 10, 0)
        return sum(int(w.shape.num_elements()) for w in model.trainable_weights)

    resnet = re.search(r"`resnet20\.yaml` \| [^|]*\(([\d,]+) weights", README)
    vgg = re.search(r"`vgg16\.yaml` \| [^|]*\(([\d.]+)M weights", README)
    assert int(resnet.group(1).replace(",", "")) == trainable("resnet20")
    assert float(vgg.group(1)) == round(trainable("vgg16") / 1e6, 1)
