"""The recipe options of ``train`` and ``gradcheck``: each choice reaches the configuration, the
report, the checkpoint and the model file; recipes are valid option sets that explicit options
override; every bad value ends in one line."""

import json
import shlex

import numpy as np
import pytest

from helpers import assert_user_error, invoke
from jitnet.cli import train as _cli_train
from jitnet.cli import main as cli_module
from jitnet.engine import components as recipes
from jitnet.training.recipes import RECIPES, describe
from jitnet.training import TrainConfig, load_checkpoint, load_model

SMALL = ["--train-limit", "2000", "--validation", "500", "--test-limit", "1000", "--hidden",
         "16", "--epochs", "2", "--eval-every", "1"]

pytestmark = pytest.mark.usefixtures("in_tmp_path", "no_pictures")


def parsed(*args):
    """The train command's option values for ``args``, without running it."""
    return _cli_train.train.make_context("train", list(args)).params


# -- recipes as data ------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(RECIPES))
def test_every_recipe_is_a_documented_valid_configuration(name):
    recipe = RECIPES[name]
    config = TrainConfig(**recipe.options, recipe=name)
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert config.distortion is None or not config.distortion.is_identity
    assert name == "tutorial" or any(year in recipe.about for year in ("1998", "2003", "2010"))
    assert name in _cli_train.train.help
    # describe() gives train options that the command line reads back as the recipe.
    values = parsed(*shlex.split(describe(name)))
    assert {field: values[field] for field in recipe.options} == recipe.options


def test_the_tutorial_recipe_is_the_default_configuration():
    assert TrainConfig(**RECIPES["tutorial"].options) == TrainConfig()


def test_command_line_names_are_the_engines():
    assert cli_module.ACTIVATIONS == tuple(recipes.ACTIVATIONS)
    assert cli_module.LOSSES == recipes.LOSSES
    for spelling in ("scaled-tanh", "scaled_tanh"):
        assert parsed("--activation", spelling)["activation"] == "scaled_tanh"
    for spelling in ("cross-entropy", "cross_entropy"):
        assert parsed("--loss", spelling)["loss"] == "cross_entropy"
    assert parsed("--init", "uniform:0.05")["init"] == "uniform:0.05"


# -- runs ----------------------------------------------------------------------------------------


def test_recipe_options_reach_config_report_checkpoint_and_model(tmp_path):
    result = invoke("train", "--recipe", "simard2003-plain", *SMALL, "--momentum", "0.5",
                    "--init", "glorot", "--name", "run")
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "run"
    config = json.loads((run / "config.json").read_text())
    expected = {"recipe": "simard2003-plain", "loss": "cross_entropy", "dtype": "float32",
                "schedule": "exponential", "decay": 0.95, "rate": 0.02, "momentum": 0.5,
                "init": "glorot", "hidden": [16], "epochs": 2, "activation": "relu"}
    assert {key: config[key] for key in expected} == expected
    report = json.loads((run / "report.json").read_text())
    options = {key: value for key, value in config.items() if key != "data_source"}
    assert report["config"] == options and report["status"] == "finished"
    assert config["data_source"]["n_train"] == report["data"]["n_train"]
    assert report["output_activation"] == "softmax"
    rates = [json.loads(line)["rate"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert rates == [0.02, 0.02 * 0.95]
    net, info = load_model(run)
    assert (net.loss, net.output_activation, net.init, net.dtype.name) == (
        "cross_entropy", "softmax", "glorot", "float32")
    assert info["config"]["recipe"] == "simard2003-plain" and info["input_scale"] is None
    checkpoint = load_checkpoint(run / "checkpoint.npz")
    assert checkpoint.net.velocity is not None and np.abs(checkpoint.net.velocity).max() > 0
    assert "network 784-16-10 relu/softmax cross-entropy float32" in result.stderr
    # The experiment's options stay on resume.
    result = invoke("train", "--resume", run, "--momentum", "0.9")
    assert_user_error(result, "--momentum 0.5, not 0.9")


def test_a_distorted_recipe_records_its_distortion(tmp_path):
    result = invoke("train", "--recipe", "simard2003", *SMALL, "--elastic-alpha", "20",
                    "--name", "run")
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "runs" / "run" / "config.json").read_text())
    assert (config["distort"], config["elastic_sigma"], config["elastic_alpha"]) == (
        "elastic", 4.0, 20.0)
    assert "distorted: Distortion(elastic_sigma=4.0, elastic_alpha=20.0)" in result.stderr


@pytest.mark.parametrize("args, words", [
    (["--activation", "softplus"], ["'softplus' is not one of", "scaled-tanh"]),
    (["--loss", "hinge"], ["'hinge' is not one of", "cross-entropy"]),
    (["--init", "uniform:0"], ["--init", "positive number"]),
    (["--recipe", "lecun1989"], ["'lecun1989' is not one of"]),
    (["--schedule", "exponential", "--decay", "0"], ["--decay", "0<x<=1"]),
    (["--schedule", "step", "--decay", "-0.5"], ["--decay", "0<x<=1"]),
    (["--momentum", "1"], ["--momentum", "0<=x<1"]),
    (["--momentum", "-0.1"], ["--momentum", "0<=x<1"]),
    (["--decay", "0.9"], ["--decay needs --schedule exponential or step"]),
    (["--schedule", "exponential", "--step-every", "3"], ["--step-every needs --schedule step"]),
    (["--rotate", "5"], ["--rotate needs --distort affine or both"]),
    (["--distort", "elastic", "--elastic-sigma", "0"], ["--elastic-sigma must be positive"]),
    (["--distort", "both", "--elastic-sigma", "29"], ["--elastic-sigma 29", "28x28"]),
    (["--distort", "affine", "--shear", "90"], ["--shear", "0<=x<90"]),
])
def test_bad_recipe_options_end_in_one_line_before_any_folder(tmp_path, args, words):
    result = invoke("train", *SMALL, *args)
    assert_user_error(result, *words)
    assert not (tmp_path / "runs").exists()


# -- gradcheck ------------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "scaled-tanh", "relu"])
@pytest.mark.parametrize("loss", ["squared", "cross-entropy"])
def test_gradcheck_checks_every_activation_and_loss(activation, loss):
    result = invoke("gradcheck", "--sizes", "6,4,3", "--activation", activation, "--loss", loss,
                    "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["passed"] and report["n_params"] == 6 * 4 + 4 + 4 * 3 + 3
    assert (report["activation"], report["loss"]) == (activation.replace("-", "_"),
                                                      loss.replace("-", "_"))


@pytest.mark.parametrize("args, words", [
    (["--sizes", "6,4,1", "--loss", "cross-entropy"], ["at least 2 outputs"]),
    (["--engine", "object", "--activation", "tanh"], ["only the sigmoid"]),
    (["--activation", "softplus"], ["'softplus' is not one of"]),
])
def test_gradcheck_bad_recipes_end_in_one_line(args, words):
    assert_user_error(invoke("gradcheck", *args), *words)
