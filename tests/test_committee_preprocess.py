"""Committees whose members preprocess their digits differently (``--vary preprocess``, Meier et
al. 2011): the ladder each member takes, the refusals, and a tiny committee on a local Dask
cluster whose members each carry their own preprocessing, so that the committee, `evaluate` and
the library all average members that take the raw images."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

import jitnet
from jitnet.cli.main import cli
from jitnet.sweep import SweepError
from jitnet.sweep.committee import PREPROCESS_LADDER, parse_options, parse_vary, plan_members
from jitnet.sweep.trial import trial_key


def test_the_ladder_gives_member_i_entry_i_mod_6():
    plans = plan_members(parse_options({"recipe": "meier2011"}), 8, parse_vary(["preprocess"]))
    assert [p["preprocess"] for p in plans] == [
        "deslant", "deslant+width:14", "deslant+width:18", "none", "deslant+width:12",
        "deslant+width:16", "deslant", "deslant+width:14"]
    assert PREPROCESS_LADDER[3] == "none"
    # Member i depends on i alone: a larger committee keeps the members of a smaller one.
    assert plan_members(parse_options({"recipe": "meier2011"}), 3,
                        parse_vary(["preprocess"])) == plans[:3]
    # The "none" member is the plain recipe's run: the same trial as without --vary.
    assert trial_key(plans[3]) == trial_key({"recipe": "meier2011", "seed": 3})
    # Together with the distortion ladder.
    both = plan_members(parse_options({"recipe": "meier2011"}), 3,
                        parse_vary(["preprocess", "distortion"]))
    assert [(p["preprocess"], p.get("elastic_alpha")) for p in both] == [
        ("deslant", None), ("deslant+width:14", 30.6), ("deslant+width:18", 41.4)]


def test_a_list_of_preprocessings_cycles_and_is_checked():
    plans = plan_members({}, 3, parse_vary(["preprocess=width:10,deslant"]))
    assert [p["preprocess"] for p in plans] == ["width:10", "deslant", "width:10"]
    with pytest.raises(SweepError) as info:
        plan_members({}, 2, parse_vary(["preprocess=width:0,deslant"]))
    assert "\n" not in str(info.value) and "width:0" in str(info.value)


@pytest.mark.parametrize("options, vary, words", [
    ({"preprocess": "deslant"}, ["preprocess"], ["--preprocess is given and varied"]),
    ({"preprocess": "deslant"}, ["preprocess=none,deslant"], ["--preprocess is given"]),
    ({}, ["preprocess", "preprocess=none"], ["--vary preprocess is given twice"]),
])
def test_preprocessing_both_given_and_varied_is_one_line(options, vary, words):
    with pytest.raises(SweepError) as info:
        plan_members(parse_options(options), 2, parse_vary(vary))
    assert "\n" not in str(info.value)
    for word in words:
        assert word in str(info.value)


def test_a_committee_of_preprocessed_members_on_a_local_cluster(tmp_path):
    pytest.importorskip("distributed")
    out = tmp_path / "committee"
    result = CliRunner().invoke(cli, [
        "committee", "--out", str(out), "--workers", "1", "--members", "2", "--vary",
        "preprocess", "--hidden", "16", "--epochs", "2", "--train-limit", "2000",
        "--test-limit", "1000", "--validation", "500"])
    assert result.exit_code == 0, result.output
    document = json.loads((out / "committee.json").read_text())
    assert [m["varied"] for m in document["members"]] == [
        {"preprocess": "deslant"}, {"preprocess": "deslant+width:14"}]
    committee = jitnet.Committee.load(out)
    assert [str(net.preprocessing) for net in committee] == ["deslant", "deslant+width:14"]
    _, test = jitnet.load_mnist()
    images, labels = test.images[:1000], test.labels[:1000]
    # Every member takes raw digits and preprocesses them as it was trained ...
    for member, net in zip(document["members"], committee):
        assert net.evaluate(images, labels) == member["test_error"]
        plain = net.copy()
        plain.preprocessing = None
        np.testing.assert_array_equal(net.predict(images),
                                      plain.predict(net.preprocessing.apply(images)))
    # ... so the committee averages the members' own outputs.
    outputs = np.mean([np.asarray(net.predict(images), np.float64) for net in committee], 0)
    np.testing.assert_allclose(committee.predict(images), outputs, rtol=1e-6, atol=1e-7)
    assert committee.evaluate(images, labels) == document["committee"]["test_error"]
    evaluated = CliRunner().invoke(cli, ["evaluate", str(out), "--json"])  # all 10,000
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.stdout)["error_rate"] == pytest.approx(
        committee.evaluate(test.images, test.labels), abs=1e-12)
    # ONNX has no form of the preprocessing: export refuses the committee in one line.
    exported = CliRunner().invoke(cli, ["export", str(out), str(tmp_path / "c.onnx")])
    assert exported.exit_code == 2
    assert "preprocesses its images" in exported.stderr and exported.stderr.count("\n") == 1
