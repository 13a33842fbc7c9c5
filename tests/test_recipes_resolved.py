"""Recipes resolved by the library: ``TrainConfig(recipe=...)``, ``TrainConfig.from_options``,
``train --recipe``, a sweep's ``--recipe`` and its "best alone" command all train the same
configuration, and ``config.json`` holds the resolved options."""

import dataclasses
import json
import shlex

import numpy as np
import pytest
from click.testing import CliRunner

from jitnet.cli import train as cli_train
from jitnet.cli.main import cli
from jitnet.sweep import SweepError, parse_space, run_trial, train_command, trial_key
from jitnet.training import TrainConfig, TrainingError, run_training
from jitnet.training.recipes import RECIPES

PLAIN = RECIPES["simard2003-plain"].options
TINY = {"epochs": 1, "train_limit": 500, "validation": 100, "test_limit": 100}


def arrays(path):
    """The network arrays of a model file (not its description, which names its paths)."""
    with np.load(path) as f:
        return {k: f[k] for k in f.files if k != "jitnet_train_info"}


def same_arrays(a, b):
    return sorted(a) == sorted(b) and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.fixture
def no_pictures(monkeypatch):
    from jitnet.cli.pictures import RunPictures

    monkeypatch.setattr(RunPictures, "curve", lambda *args, **kwargs: None)
    monkeypatch.setattr(RunPictures, "final", lambda *args, **kwargs: None)


# -- the configuration ------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(RECIPES))
def test_the_constructor_resolves_every_recipe(name):
    config = TrainConfig(recipe=name)
    assert config.recipe == name
    assert {field: getattr(config, field) for field in RECIPES[name].options} == \
        RECIPES[name].options
    others = {f.name for f in dataclasses.fields(TrainConfig)} - set(RECIPES[name].options)
    defaults = TrainConfig()
    assert all(getattr(config, f) == getattr(defaults, f) for f in others - {"recipe"})


def test_given_options_win_even_at_their_default_value():
    config = TrainConfig(recipe="simard2003-plain", dtype="float64", activation="sigmoid",
                         epochs=5)
    assert (config.dtype, config.activation, config.epochs) == ("float64", "sigmoid", 5)
    assert (config.loss, config.rate, config.hidden) == ("cross_entropy", 0.02, (800,))
    # What a file holds is the resolved configuration: read back, nothing is applied again.
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert dataclasses.replace(config, epochs=9).dtype == "float64"


def test_from_dict_fills_absent_fields_with_defaults_not_the_recipe():
    config = TrainConfig.from_dict({"recipe": "simard2003-plain", "hidden": [16]})
    assert (config.activation, config.loss, config.hidden) == ("sigmoid", "squared", (16,))


def test_no_field_keeps_the_not_given_marker():
    for config in (TrainConfig(), TrainConfig(recipe="ciresan2010"), TrainConfig(rate=0.1)):
        assert "recipe's or the default" not in repr(config)
    assert TrainConfig().to_dict() == {
        f.name: (list(f.metadata["default"]) if f.name == "hidden" else f.metadata["default"])
        for f in dataclasses.fields(TrainConfig)}


@pytest.mark.parametrize("call, words", [
    (lambda: TrainConfig(recipe="simard2004"), ["unknown recipe \"simard2004\"", "simard2003"]),
    (lambda: TrainConfig.from_options(speed=3), ["unknown option --speed"]),
    (lambda: TrainConfig.from_options(decay=0.9),
     ["--decay needs --schedule exponential or step (it is constant)"]),
    (lambda: TrainConfig.from_options(recipe="simard2003-plain", rotate=5.0),
     ["--rotate needs --distort affine or both (it is none)"]),
])
def test_refusals_are_one_line(call, words):
    with pytest.raises(TrainingError) as info:
        call()
    assert "\n" not in str(info.value)
    for word in words:
        assert word in str(info.value)


def test_from_options_takes_what_the_recipe_makes_meaningful():
    config = TrainConfig.from_options(recipe="simard2003", decay=0.9, elastic_alpha=20.0)
    assert (config.schedule, config.decay, config.distort, config.elastic_alpha) == (
        "exponential", 0.9, "elastic", 20.0)
    assert TrainConfig.from_options(recipe="simard2003-plain") == TrainConfig(
        recipe="simard2003-plain")


def test_train_defaults_are_the_configurations():
    """``train`` passes only the options given to from_options: its shown defaults must be the
    configuration's, or ``--help`` would lie."""
    params = cli_train.train.make_context("train", []).params
    defaults = TrainConfig()
    for field in dataclasses.fields(TrainConfig):
        assert params[field.name] == getattr(defaults, field.name), field.name


def test_run_training_trains_the_recipe(tmp_path):
    config = TrainConfig(recipe="simard2003-plain", hidden=(16,), **TINY)
    result = run_training(config, tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (saved["activation"], saved["loss"], saved["dtype"], saved["rate"]) == (
        "relu", "cross_entropy", "float32", 0.02)
    assert result.state.net.activation == "relu" and result.state.net.loss == "cross_entropy"


# -- sweeps ------------------------------------------------------------------------------------


def test_a_trial_with_a_recipe_is_resolved_and_its_command_repeats_it():
    trial = {"recipe": "simard2003-plain", **TINY}
    assert train_command(trial) == ("python cli.py train --recipe simard2003-plain --epochs 1 "
                                    "--validation 100 --train-limit 500 --test-limit 100")
    # The key counts what is trained: the recipe's options are part of it.
    assert trial_key(trial) != trial_key(TINY)
    assert trial_key(trial) == trial_key({**trial, "rate": PLAIN["rate"]})


def test_the_command_of_a_recipe_with_an_override_is_accepted_by_train():
    """simard2003 decays its rate; a trial that sets a constant schedule keeps the recipe's
    decay, which the command must not give (train refuses --decay with --schedule constant)."""
    command = train_command({"recipe": "simard2003", "schedule": "constant", **TINY})
    assert "--decay" not in command and "--schedule constant" in command
    args = shlex.split(command)[3:]
    context = cli_train.train.make_context("train", args)
    given = {name for name in context.params
             if context.get_parameter_source(name).name == "COMMANDLINE"}
    config = TrainConfig.from_options(**{name: context.params[name] for name in given})
    assert config == TrainConfig(recipe="simard2003", schedule="constant",
                                 **{k: v for k, v in TINY.items()})


def test_a_sweep_refuses_what_train_refuses_before_any_cluster():
    space = parse_space({"decay": "0.9,0.8"})  # each value is valid on its own
    with pytest.raises(SweepError, match="--decay needs --schedule exponential or step"):
        trial_key(space.trials()[0])
    space = parse_space({"schedule": "exponential", "decay": "0.9,0.8"})
    assert len({trial_key(t) for t in space.trials()}) == 2


def test_run_trial_writes_the_resolved_options(tmp_path):
    result = run_trial({"recipe": "simard2003-plain", "hidden": [16], **TINY}, tmp_path / "t")
    assert result["status"] == "finished", result["error"]
    saved = json.loads((tmp_path / "t" / "config.json").read_text())
    for options in (saved, result["options"]):
        assert (options["activation"], options["loss"], options["init"], options["recipe"]) == (
            "relu", "cross_entropy", "he", "simard2003-plain")
        assert options["hidden"] == [16] and options["schedule"] == "exponential"


def test_sweep_command_trains_the_recipe_and_its_best_alone_repeats_it(tmp_path, no_pictures):
    """The issue's bar, through ``jitnet sweep`` on its own local cluster (one worker)."""
    pytest.importorskip("distributed")
    out = tmp_path / "sweep"
    result = CliRunner().invoke(cli, [
        "sweep", "--recipe", "simard2003-plain", "--epochs", "1", "--train-limit", "500",
        "--validation", "100", "--test-limit", "100", "--hidden", "16", "--workers", "1",
        "--out", str(out)])
    assert result.exit_code == 0, result.output
    (trial,) = json.loads((out / "results.json").read_text())["trials"]
    folder = out / "trials" / trial["key"]
    saved = json.loads((folder / "config.json").read_text())
    assert (saved["activation"], saved["loss"], saved["rate"], saved["dtype"]) == (
        "relu", "cross_entropy", 0.02, "float32")
    best = next(line for line in result.stdout.splitlines() if line.startswith("best alone: "))
    args = shlex.split(best[len("best alone: "):])
    args = args[args.index("train") + 1:]
    assert args[:2] == ["--recipe", "simard2003-plain"]
    alone = CliRunner().invoke(cli, ["train", *args, "--runs-dir", str(tmp_path), "--name",
                                     "alone", "--quiet"])
    assert alone.exit_code == 0, alone.output
    again = json.loads((tmp_path / "alone" / "config.json").read_text())
    # The same configuration but the sweep's checkpoint cadence (not part of the result).
    assert {**again, "checkpoint_every": None} == {**saved, "checkpoint_every": None}
    assert same_arrays(arrays(tmp_path / "alone" / "model.npz"), arrays(folder / "model.npz"))
