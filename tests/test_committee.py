"""Committees without a cluster: jitnet.Committee (the average of its members' outputs, by hand),
its folder and committee.json (round trip; a damaged file is one CommitteeFileError, by hand and
by Hypothesis), evaluate and predict on a committee folder, and the plan of a committee's
members (--vary, the errors before any cluster starts). The command on a Dask cluster is in
test_committee_cluster.py."""

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import jitnet
from jitnet.cli.main import cli
from jitnet.engine.committee import FILE_NAME, Committee, CommitteeFileError, average
from jitnet.sweep import SweepError, trial_key
from jitnet.sweep.committee import LADDER, parse_options, parse_vary, plan_members

TOL = 1e-12


def constant_net(outputs, **kwargs):
    """A sigmoid 2-1-K network whose outputs are ``outputs`` for every input: all weights zero,
    the output biases logit(outputs)."""
    outputs = np.asarray(outputs, np.float64)
    net = jitnet.Network([2, 1, len(outputs)], **kwargs)
    pairs = net.get_weights()
    pairs = [(np.zeros_like(W), np.zeros_like(b)) for W, b in pairs]
    pairs[-1] = (pairs[-1][0], np.log(outputs / (1 - outputs)))
    net.set_weights(pairs)
    return net


X2 = np.array([[0.0, 0.0], [1.0, 0.5], [0.3, 0.9]])


# -- the rule, by hand ------------------------------------------------------------------------


def test_outputs_are_averaged_by_hand():
    a, b = constant_net([0.5, 0.75]), constant_net([0.75, 0.25])
    committee = Committee([a, b])
    # (0.5 + 0.75) / 2 = 0.625 and (0.75 + 0.25) / 2 = 0.5, for every input
    assert np.allclose(committee.predict(X2), [[0.625, 0.5]] * 3, rtol=0, atol=TOL)
    assert np.allclose(committee.predict(X2[1]), [0.625, 0.5], rtol=0, atol=TOL)
    assert a.classify(X2).tolist() == [1, 1, 1] and b.classify(X2).tolist() == [0, 0, 0]
    assert committee.classify(X2).tolist() == [0, 0, 0]
    assert committee.classify(X2[0]) == 0
    assert committee.evaluate(X2, [0, 1, 0]) == pytest.approx(1 / 3)


def test_an_average_is_not_a_vote():
    """Two members lean weakly to class 1, one strongly to class 0: a vote says 1, the average
    (0.9 + 0.5 + 0.5) / 3 = 0.633 against (0.1 + 0.52 + 0.52) / 3 = 0.38 says 0."""
    members = [constant_net([0.9, 0.1]), constant_net([0.5, 0.52]), constant_net([0.5, 0.52])]
    committee = Committee(members)
    assert np.allclose(committee.predict(X2[0]), [1.9 / 3, 1.14 / 3], rtol=0, atol=TOL)
    assert committee.classify(X2).tolist() == [0, 0, 0]
    assert [int(m.classify(X2[0])) for m in members] == [0, 1, 1]


def test_equal_averages_pick_the_first_class():
    committee = Committee([constant_net([0.5, 0.75]), constant_net([0.75, 0.5])])
    assert np.allclose(committee.predict(X2[0]), [0.625, 0.625], rtol=0, atol=TOL)
    assert committee.classify(X2).tolist() == [0, 0, 0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_members_mixed_dtypes_and_sizes(seed):
    rng = np.random.default_rng(seed)
    # relu networks with the squared error have sigmoid outputs, as sigmoid networks do.
    nets = [jitnet.Network([6, h, 4], activation=act, dtype=dtype, seed=seed + k)
            for k, (h, act, dtype) in enumerate([(5, "sigmoid", "float64"),
                                                 (3, "sigmoid", "float32"),
                                                 (8, "relu", "float64")])]
    X = rng.random((7, 6))
    committee = Committee(nets)
    expected = sum(np.asarray(n.predict(X), np.float64) for n in nets) / 3
    assert committee.dtype == np.float64  # members disagree
    assert np.allclose(committee.predict(X), expected, rtol=0, atol=TOL)
    assert committee.classify(X).tolist() == expected.argmax(axis=1).tolist()
    labels = rng.integers(0, 4, 7)
    assert committee.evaluate(X, labels) == np.mean(expected.argmax(axis=1) != labels)
    assert committee.member_outputs(X).shape == (3, 7, 4)
    assert len(committee) == 3 and committee[1] is nets[1] and list(committee) == nets
    one = Committee(nets[:1])  # a committee of one is its member
    assert np.array_equal(one.predict(X), nets[0].predict(X))
    assert Committee([nets[1], nets[1]]).dtype == np.float32


def test_average_sums_in_member_order_then_divides():
    outputs = [np.array([0.1, 0.2]), np.array([0.7, 0.3]), np.array([0.4, 0.9])]
    assert average(outputs).tolist() == [((0.1 + 0.7) + 0.4) / 3, ((0.2 + 0.3) + 0.9) / 3]
    assert average(outputs, np.float32).dtype == np.float32


@pytest.mark.parametrize(
    "members, words",
    [
        ([], ["at least one network"]),
        (["net"], ["member 1 is a str", "jitnet.Network"]),
        ([jitnet.Network([4, 3, 2]), jitnet.Network([5, 3, 2])],
         ["member 2 (5-3-2) has inputs 5", "member 1 (4-3-2) has 4"]),
        ([jitnet.Network([4, 3, 2]), jitnet.Network([4, 3, 3])], ["has outputs 3"]),
        ([jitnet.Network([4, 3, 2]), jitnet.Network([4, 3, 2], loss="cross_entropy")],
         ["output activation 'softmax'", "'sigmoid'"]),
        ([jitnet.Network([4, 3, 2]), jitnet.Network([4, 3, 2], activation="tanh")],
         ["output activation 'tanh'"]),
    ],
)
def test_members_that_cannot_be_averaged_are_one_line(members, words):
    with pytest.raises(ValueError) as info:
        Committee(members)
    assert "\n" not in str(info.value)
    for word in words:
        assert word in str(info.value)


def test_members_must_scale_inputs_alike():
    raw = jitnet.Network([4, 3, 2], seed=1)
    raw.input_scale = 1.0
    with pytest.raises(ValueError, match="member 2 .* input scale 1.0 but member 1 .* None"):
        Committee([jitnet.Network([4, 3, 2]), raw])
    # Members that agree pass their scale on: raw 0-255 pixels are fed as they are.
    raw2 = jitnet.Network([4, 3, 2], seed=2)
    raw2.input_scale = 1.0
    pixels = np.array([[0, 255, 10, 3]], np.uint8)
    committee = Committee([raw, raw2])
    assert committee.input_scale == 1.0
    assert np.allclose(committee.predict(pixels),
                       (raw.predict(pixels) + raw2.predict(pixels)) / 2, rtol=0, atol=TOL)


def test_bad_inputs_and_labels_are_the_networks_errors():
    committee = Committee([constant_net([0.5, 0.75])])
    with pytest.raises(ValueError, match=r"X must have shape \(N, 2\)"):
        committee.predict(np.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"class labels must lie in \[0, 1\]"):
        committee.evaluate(X2, [0, 1, 2])
    with pytest.raises(ValueError, match="zero samples"):
        committee.evaluate(np.zeros((0, 2)), [])


# -- the folder -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A committee of three small trained MNIST networks, saved; and its test set."""
    train, test = jitnet.load_mnist()
    nets = []
    for seed, hidden in enumerate((12, 16, 20)):
        net = jitnet.Network([784, hidden, 10], seed=seed)
        net.train(train.images[:2000], train.labels[:2000], rate=0.3, epochs=1, shuffle=True,
                  seed=seed)
        nets.append(net)
    folder = tmp_path_factory.mktemp("committee")
    path = Committee(nets).save(folder)
    return folder, path, nets, test


def test_folder_round_trip(saved):
    folder, path, nets, test = saved
    assert path == folder / FILE_NAME
    document = json.loads(path.read_text())
    assert document["format"] == "jitnet-committee" and document["rule"] == "mean"
    assert [m["model"] for m in document["members"]] == ["member-1.npz", "member-2.npz",
                                                         "member-3.npz"]
    for source in (folder, path, str(folder)):
        loaded = Committee.load(source)
        assert len(loaded) == 3 and [m.sizes for m in loaded] == [n.sizes for n in nets]
        assert np.array_equal(loaded.predict(test.images[:500]),
                              Committee(nets).predict(test.images[:500]))
    assert jitnet.Committee is Committee
    assert "784-12-10 sigmoid float64" in repr(loaded)


def test_members_named_by_run_folder_or_absolute_path(saved, tmp_path):
    folder, _, nets, test = saved
    run = tmp_path / "runs" / "a"
    run.mkdir(parents=True)
    nets[0].save(run / "model.npz")
    document = json.loads((folder / FILE_NAME).read_text())
    document["members"] = [{"model": "runs/a"}, {"model": str(folder / "member-2.npz")}]
    (tmp_path / FILE_NAME).write_text(json.dumps(document))
    loaded = Committee.load(tmp_path)
    assert np.array_equal(loaded.predict(test.images[:50]),
                          Committee(nets[:2]).predict(test.images[:50]))


def _damaged(folder, text):
    (folder / FILE_NAME).write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(CommitteeFileError) as info:
        Committee.load(folder)
    message = str(info.value)
    assert "\n" not in message and FILE_NAME in message
    return message


def test_damaged_files_by_hand(saved, tmp_path):
    folder, path, nets, _ = saved
    for name in ("member-1.npz", "member-2.npz", "member-3.npz"):
        (tmp_path / name).write_bytes((folder / name).read_bytes())
    good = json.loads(path.read_text())
    cases = {
        b"": "not valid JSON",
        b"\xff\xfe": "not valid JSON",
        "[1, 2]": "not a committee file",
        json.dumps({**good, "format": "jitnet-model"}): "not a committee file",
        json.dumps({**good, "version": 2}): "from a newer jitnet",
        json.dumps({**good, "version": "1"}): "bad version",
        json.dumps({**good, "rule": "vote"}): "unknown rule 'vote'",
        json.dumps({**good, "members": []}): "non-empty list",
        json.dumps({**good, "members": [{"folder": "x"}]}): 'member 1 has no "model"',
        json.dumps({**good, "members": [{"model": "member-1.npz"}, {"model": "gone.npz"}]}):
            "member 2:",
        json.dumps({**good, "members": [{"model": "member-1.npz"}, {"model": FILE_NAME}]}):
            "member 2:",
        "[" * 100000: "not valid JSON",
    }
    for text, words in cases.items():
        assert words in _damaged(tmp_path, text)
    # Members that disagree: a 784-12-10 network beside a 784-12-3 one.
    jitnet.Network([784, 12, 3]).save(tmp_path / "three.npz")
    message = _damaged(tmp_path, json.dumps({**good, "members": [{"model": "member-1.npz"},
                                                                 {"model": "three.npz"}]}))
    assert "has outputs 3" in message
    (tmp_path / FILE_NAME).unlink()
    with pytest.raises(CommitteeFileError, match="cannot read it"):
        Committee.load(tmp_path)


@st.composite
def damaged_documents(draw):
    """A valid committee.json with one key's value replaced, a key removed or added, or its
    bytes cut or flipped."""
    document = {"format": "jitnet-committee", "version": 1, "rule": "mean",
                "members": [{"model": "member-1.npz"}, {"model": "member-2.npz"}],
                "committee": {"test_error": 0.1}}
    values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                          lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                          max_leaves=6)
    how = draw(st.sampled_from(["replace", "remove", "member", "cut", "flip"]))
    if how == "replace":
        document[draw(st.sampled_from(sorted(document)))] = draw(values)
    elif how == "remove":
        del document[draw(st.sampled_from(sorted(document)))]
    elif how == "member":
        k = draw(st.integers(0, 1))
        document["members"][k] = draw(values | st.fixed_dictionaries({"model": values}))
    raw = json.dumps(document).encode()
    if how == "cut":
        raw = raw[: draw(st.integers(0, len(raw) - 1))]
    elif how == "flip":
        i = draw(st.integers(0, len(raw) - 1))
        raw = raw[:i] + bytes([raw[i] ^ draw(st.integers(1, 255))]) + raw[i + 1:]
    return raw


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=damaged_documents())
@example(raw=b'{"format": "jitnet-committee", "version": 1, "rule": "mean", "members": [1]}')
@example(raw=b'{"format": "jitnet-committee", "version": true, "rule": "mean", "members": []}')
@example(raw=b'{"format": "jitnet-committee", "version": 1, "rule": "mean", '
             b'"members": [{"model": "member-1.npz\\u0000"}]}')
def test_a_damaged_committee_file_is_one_clear_error_or_the_committee(raw, saved,
                                                                      tmp_path_factory):
    folder, _, nets, test = saved
    where = tmp_path_factory.getbasetemp() / "damaged"
    if not where.exists():
        where.mkdir()
        for name in ("member-1.npz", "member-2.npz"):
            (where / name).write_bytes((folder / name).read_bytes())
    (where / FILE_NAME).write_bytes(raw)
    try:
        loaded = Committee.load(where)
    except CommitteeFileError as exc:
        assert "\n" not in str(exc) and FILE_NAME in str(exc)
        return
    # Still a committee file: its members are the saved ones.
    models = [m["model"] for m in json.loads(raw)["members"]]
    expected = [nets[int(Path(m).stem[-1]) - 1] for m in models]
    assert np.array_equal(loaded.predict(test.images[:20]),
                          Committee(expected).predict(test.images[:20]))


# -- evaluate and predict ---------------------------------------------------------------------


def test_evaluate_and_predict_take_a_committee_folder(saved, tmp_path):
    folder, _, nets, test = saved
    committee = Committee(nets)
    result = CliRunner().invoke(cli, ["evaluate", str(folder), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    expected = committee.evaluate(test.images, test.labels)
    assert report["error_rate"] == pytest.approx(expected, abs=1e-12)
    assert all(Committee([n]).evaluate(test.images, test.labels) != expected for n in nets)
    assert report["sizes"] is None and report["activation"] == "sigmoid"
    assert [m["sizes"] for m in report["committee"]["members"]] == [n.sizes for n in nets]
    text = CliRunner().invoke(cli, ["evaluate", str(folder)])
    assert text.exit_code == 0, text.output
    assert "committee of 3 (outputs averaged): 784-12-10 sigmoid float64," in text.stdout
    assert f"error rate {100 * expected:.2f}%" in text.stdout

    result = CliRunner().invoke(cli, ["predict", str(folder / FILE_NAME), "--index", "7",
                                      "--json"])
    assert result.exit_code == 0, result.output
    (prediction,) = json.loads(result.stdout)["predictions"]
    assert np.allclose(prediction["outputs"], committee.predict(test.images[7]), rtol=0,
                       atol=1e-12)
    assert prediction["predicted"] == int(committee.classify(test.images[7]))

    (tmp_path / FILE_NAME).write_text('{"format": "jitnet-committee", "version": 1}')
    bad = CliRunner().invoke(cli, ["evaluate", str(tmp_path)])
    assert bad.exit_code == 2
    assert bad.stderr.strip().count("\n") == 0
    assert "unknown rule None" in bad.stderr and FILE_NAME in bad.stderr


# -- planning a committee's members -----------------------------------------------------------


def test_members_differ_by_seed_and_vary_lists_cycle():
    base = parse_options({"recipe": "simard2003-plain", "epochs": "3", "hidden": "32x16"})
    assert base == {"recipe": "simard2003-plain", "epochs": 3, "hidden": [32, 16]}
    plans = plan_members(base, 5, parse_vary(["rate=0.01,0.02", "dtype=float64"]))
    assert [p["seed"] for p in plans] == [0, 1, 2, 3, 4]
    assert [p["rate"] for p in plans] == [0.01, 0.02, 0.01, 0.02, 0.01]
    assert all(p["dtype"] == "float64" and p["hidden"] == [32, 16] for p in plans)
    # Member i depends on i alone: a larger committee keeps the smaller one's members.
    assert plan_members(base, 3, parse_vary(["rate=0.01,0.02", "dtype=float64"])) == plans[:3]
    # Without --vary member 0 is `train` with the same options.
    assert trial_key(plan_members(base, 1)[0]) == trial_key({**base, "seed": 0})


def test_ladders_scale_hidden_sizes_and_distortions():
    base = parse_options({"recipe": "simard2003"})
    plans = plan_members(base, 4, parse_vary(["distortion", "hidden"]))
    assert LADDER == (1.0, 0.85, 1.15)
    assert [p.get("elastic_alpha", 34.0) for p in plans] == [34.0, 28.9, 39.1, 34.0]
    assert [p.get("hidden", [800]) for p in plans] == [[800], [680], [920], [800]]
    assert "elastic_alpha" not in plans[0] and "hidden" not in plans[0]
    both = plan_members({"hidden": [20], "distort": "both", "translate": 2.0}, 3,
                        parse_vary(["distortion"]))
    assert [(p.get("rotate"), p.get("scale"), p.get("shear"), p.get("translate"))
            for p in both[1:]] == [(12.75, 0.1275, 12.75, 1.7), (17.25, 0.1725, 17.25, 2.3)]
    assert both[1]["elastic_alpha"] == 28.9


@pytest.mark.parametrize(
    "options, vary, members, words",
    [
        ({"hidden": "16,32"}, [], 2, ["--hidden", "share every option", "--vary hidden="]),
        ({"seed": "3"}, [], 2, ["--seed", "seeds 0..K-1"]),
        ({"seeds": "3"}, [], 2, ["--seeds", "seeds 0..K-1"]),
        ({"rate": "0.1:1"}, [], 2, ["--rate", "share every option"]),
        ({}, ["validation=100,200"], 2, ["--vary validation", "same data and input scale"]),
        ({}, ["raw-pixels=true,false"], 2, ["--vary raw-pixels"]),
        ({}, ["seed=1,2"], 2, ["--vary seed", "differ by seed already"]),
        ({}, ["distortion"], 2, ["--vary distortion", "not distorted"]),
        ({}, ["loss=squared,cross_entropy"], 2, ["seed 0 would have sigmoid outputs",
                                                 "seed 1 softmax outputs", "same kind"]),
        ({}, ["wider"], 2, ["--vary wider", "NAME=V1,V2"]),
        ({}, ["rate=fast"], 2, ["--rate", "'fast' is not a number"]),
        ({}, ["rate=0.1:1"], 2, ["not ranges"]),
        ({"rate": "0.3"}, ["rate=0.1,0.2"], 2, ["--rate is given and varied"]),
        ({}, ["hidden", "hidden=8"], 2, ["--vary hidden is given twice"]),
        ({"distort": "elastic"}, ["distortion", "elastic-alpha=30,40"], 2,
         ["--vary distortion scales --elastic-alpha"]),
        ({"hiden": "3"}, [], 2, ["unknown option --hiden"]),
        ({}, [], 0, ["--members 0", "1 to 100"]),
        ({"epochs": "3"}, ["decay=0.5,0.9"], 2, ["--decay needs --schedule"]),
    ],
)
def test_plans_a_train_would_refuse_are_one_line_errors(options, vary, members, words):
    with pytest.raises(SweepError) as info:
        plan_members(parse_options(options), members, parse_vary(vary))
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_the_command_refuses_before_any_cluster_starts(tmp_path):
    out = tmp_path / "c"
    result = CliRunner().invoke(cli, ["committee", "--out", str(out), "--hidden", "16,32"])
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: --hidden: the members of a committee share")
    assert result.stderr.count("\n") == 1 and not out.exists()
    result = CliRunner().invoke(cli, ["committee", "--members", "101"])
    assert result.exit_code == 2 and "101 is not in the range 1<=x<=100" in result.stderr
