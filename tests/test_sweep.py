"""jitnet.sweep without a cluster: search spaces, one trial, the results files, and the checks
that run_sweep and the command make before any cluster starts. The sweeps on Dask are in
test_sweep_cluster.py."""

import functools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from helpers import CtrlCAt, model_arrays, same_arrays
from jitnet.sweep import (
    Range,
    SweepError,
    SweepReporter,
    parse_space,
    run_sweep,
    run_trial,
    train_command,
    trial_key,
)
from jitnet.sweep import runner
from jitnet.sweep import trial as trial_module
from jitnet.training import TrainingInterrupted, run_training
from jitnet.sweep.command import sweep_command

ROOT = Path(__file__).resolve().parents[1]
TINY = {"epochs": "2", "train_limit": "2000", "test_limit": "1000", "validation": "500"}


def tiny_trial(**changes):
    return {"hidden": [16], "rate": 0.3, "epochs": 2, "train_limit": 2000, "test_limit": 1000,
            "validation": 500, **changes}


# -- search spaces ----------------------------------------------------------------------------


def test_grid_lists_layers_and_seeds():
    space = parse_space({"hidden": ["100,300", "500x150"], "--rate": "0.1,1", "seeds": "2",
                         "epochs": "3", "no-shuffle": None, "raw-pixels": [None]})
    assert space.size() == 12
    assert space.swept() == ["hidden", "rate", "seed"]
    trials = space.trials()
    assert len(trials) == 12
    # Seed outermost: every configuration at seed 0 first.
    assert [t["seed"] for t in trials] == [0] * 6 + [1] * 6
    assert trials[0] == {"hidden": [100], "rate": 0.1, "epochs": 3, "shuffle": False,
                         "raw_pixels": True, "seed": 0}
    assert [t["hidden"] for t in trials[:6:2]] == [[100], [300], [500, 150]]


def test_toml_file_and_command_line_override(tmp_path):
    path = tmp_path / "space.toml"
    path.write_text('hidden = [100, [500, 150], "16x8"]\nrate = "0.1,0.3"\nseeds = 2\n'
                    'epochs = 3\ntrain-limit = "none"\nshuffle = false\n')
    space = parse_space({"rate": "0.5"}, path)
    assert space.dims["hidden"] == ([100], [500, 150], [16, 8])
    assert space.dims["rate"] == (0.5,)
    assert space.dims["train_limit"] == (None,)
    assert space.dims["shuffle"] == (False,)
    assert space.seeds == 2 and space.size() == 6


def test_random_draws_are_reproducible_and_in_range():
    space = parse_space({"rate": "0.01:1", "hidden": "16:512,300", "epochs": "1:5",
                         "random_seed": "3"})
    assert isinstance(space.dims["rate"][0], Range) and space.dims["rate"][0].log
    first, again = space.trials(random=40), space.trials(random=40)
    assert first == again
    assert first != parse_space({"rate": "0.01:1", "random_seed": "4"}).trials(random=40)
    rates = [t["rate"] for t in first]
    assert all(0.01 <= r <= 1 for r in rates) and len(set(rates)) > 20
    assert all(r == float(f"{r:.3g}") for r in rates)  # 3 significant digits
    assert all(1 <= t["epochs"] <= 5 and isinstance(t["epochs"], int) for t in first)
    sizes = [t["hidden"][0] for t in first]
    assert all(16 <= h <= 512 for h in sizes) and 300 in sizes and len(set(sizes)) > 5
    # Log-uniform: about as many draws below 0.1 as above (uniform would put 91% above).
    assert 10 <= sum(r < 0.1 for r in rates) <= 30


@pytest.mark.parametrize(
    "options, words",
    [
        ({"hiden": "300"}, ["unknown option --hiden", "--rate", "--train-limit"]),
        ({"output": "x"}, ["a sweep does not take --output", "own folder", "--rate"]),
        ({"runs-dir": "x"}, ["unknown option --runs-dir"]),
        ({"rate": ""}, ["--rate", "empty value"]),
        ({"rate": "0.1,"}, ["--rate", "empty value"]),
        ({"rate": []}, ["--rate", "empty list"]),
        ({"rate": "fast"}, ["--rate", "'fast' is not a number"]),
        ({"rate": "-1"}, ["--rate -1.0 is not a positive number"]),
        ({"hidden": "0"}, ["--hidden 0 is not", ">= 1"]),
        ({"hidden": "300x"}, ["--hidden", "empty"]),
        ({"epochs": "2.5"}, ["--epochs", "not an integer"]),
        ({"shuffle": "maybe"}, ["--shuffle", "not true or false"]),
        ({"rate": "1:0.1"}, ["--rate", "LOW < HIGH"]),
        ({"rate": "0:1"}, ["--rate", "log-uniformly", "positive"]),
        ({"seed": "1,2", "seeds": "3"}, ["seed", "seeds", "not both"]),
        ({"seeds": "0"}, ["--seeds", "at least 1"]),
        ({"no-rate": None}, ["unknown option --no-rate"]),
        ({"dtype": "float16"}, ['--dtype float16 is not "float64" or "float32"']),
    ],
)
def test_bad_options_are_one_line_errors(options, words):
    with pytest.raises(SweepError) as info:
        parse_space(options)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_an_option_added_to_the_training_config_is_sweepable_at_once(monkeypatch):
    """Nothing in the sweep lists the options: a field added to TrainConfig (with its check)
    parses, validates, counts in the key and appears in the train command."""
    import dataclasses

    from jitnet import training
    from jitnet.training.config import _option, number

    def flavour_name(value):
        if value not in ("plain", "fancy"):
            raise ValueError('"plain" or "fancy"')
        return value

    @dataclasses.dataclass(frozen=True)
    class Wider(training.TrainConfig):
        warmup: float = _option(0.0, number)
        flavour: str = _option("plain", flavour_name)

    monkeypatch.setattr(training, "TrainConfig", Wider)
    monkeypatch.setattr(trial_module, "_defaults",
                        functools.lru_cache(maxsize=1)(lambda: Wider().to_dict()))
    space = parse_space({"warmup": "0,0.9", "flavour": "fancy"})
    trials = space.trials()
    assert trials == [{"warmup": 0.0, "flavour": "fancy"},
                      {"warmup": 0.9, "flavour": "fancy"}]
    assert trial_key({"warmup": 0}) == trial_key({}) != trial_key(trials[1])
    assert train_command(trials[1]) == "python cli.py train --warmup 0.9 --flavour fancy"
    with pytest.raises(SweepError, match='--flavour odd is not "plain" or "fancy"'):
        parse_space({"flavour": "odd"})
    with pytest.raises(SweepError, match="unknown option --speed; .*--warmup, --flavour$"):
        parse_space({"speed": "1"})


def test_range_needs_random():
    space = parse_space({"rate": "0.01:1"})
    with pytest.raises(SweepError, match="--rate: a range LOW:HIGH .* --random N"):
        space.trials()


@pytest.mark.parametrize(
    "text, words",
    [
        ("rate = [0.1,\n", ["not valid TOML"]),
        ("[sweep]\nrate = 0.1\n", ["[sweep] tables are not used"]),
        ("rate = [[0.1]]\n", ["rate in", "not a valid value"]),
        ("hidden = []\n", ["empty list"]),
        ("speed = 3\n", ["unknown option --speed"]),
    ],
)
def test_bad_toml_files(tmp_path, text, words):
    path = tmp_path / "space.toml"
    path.write_text(text)
    with pytest.raises(SweepError) as info:
        parse_space({}, path)
    for word in words:
        assert word in str(info.value)
    with pytest.raises(SweepError, match="--config .*missing.toml: cannot read it"):
        parse_space({}, tmp_path / "missing.toml")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rates=st.lists(st.floats(0.001, 10, allow_nan=False), min_size=1, max_size=4),
    epochs=st.lists(st.integers(1, 50), min_size=1, max_size=3),
    seeds=st.integers(1, 3),
)
def test_grid_is_the_product_of_the_lists(rates, epochs, seeds):
    space = parse_space({"rate": ",".join(map(repr, rates)),
                         "epochs": ",".join(map(str, epochs)), "seeds": str(seeds)})
    trials = space.trials()
    assert len(trials) == space.size() == len(rates) * len(epochs) * seeds
    assert {t["rate"] for t in trials} == set(rates)
    assert {t["epochs"] for t in trials} == set(epochs)


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="0123456789.,:x -e", max_size=12))
@example("1e400")
@example(",")
def test_any_text_gives_a_space_or_the_documented_error(text):
    for name in ("rate", "hidden", "epochs"):
        try:
            space = parse_space({name: text})
        except SweepError as exc:
            assert "\n" not in str(exc) and f"--{name}" in str(exc)
        else:
            assert all(len(items) >= 1 for items in space.dims.values())


# -- one trial --------------------------------------------------------------------------------


def test_trial_key_ignores_defaults_spelling_and_checkpoint_cadence():
    base = trial_key({"hidden": [300], "rate": 0.3})
    assert base == trial_key({}) == trial_key({"rate": 0.3, "checkpoint_every": 5})
    assert trial_key({"rate": 1}) == trial_key({"rate": 1.0})
    assert trial_key({"seed": 1}) != base != trial_key({"hidden": [300, 10]})
    assert train_command({"hidden": [500, 150], "rate": 0.1, "shuffle": False}) == \
        "python cli.py train --hidden 500,150 --rate 0.1 --no-shuffle"


def test_run_trial_alone_writes_its_folder_and_is_not_rerun(tmp_path):
    result = run_trial(tiny_trial(), tmp_path / "t")
    assert result["status"] == "finished" and result["key"] == trial_key(tiny_trial())
    assert 0 < result["val_error"] < 0.5 and 0 < result["test_error"] < 0.5
    assert result["epochs_completed"] == 2 and result["resumed_from"] is None
    stored = json.loads((tmp_path / "t" / "result.json").read_text())
    assert stored == result
    report = json.loads((tmp_path / "t" / "report.json").read_text())
    assert report["best_error"] == result["val_error"]
    assert (tmp_path / "t" / "model.npz").exists()
    stamp = (tmp_path / "t" / "result.json").stat().st_mtime_ns
    assert run_trial(tiny_trial(), tmp_path / "t") == result
    assert (tmp_path / "t" / "result.json").stat().st_mtime_ns == stamp


def test_failing_trial_is_recorded_with_one_line(tmp_path):
    result = run_trial(tiny_trial(train_limit=400), tmp_path / "bad")
    assert result["status"] == "failed" and result["val_error"] is None
    assert "--validation 500 holds out every sample" in result["error"]
    assert json.loads((tmp_path / "bad" / "result.json").read_text())["status"] == "failed"
    with pytest.raises(SweepError, match="unknown option --speed"):
        run_trial({"speed": 3}, tmp_path / "x")


RESUMED = tiny_trial(epochs=3, eval_every=1, patience=10, train_limit=1500, test_limit=300)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """RESUMED run without interruption: its result and model arrays."""
    folder = tmp_path_factory.mktemp("straight")
    return run_trial(RESUMED, folder), model_arrays(folder / "model.npz")


@pytest.mark.parametrize("left", ["checkpoint", "no checkpoint", "damaged checkpoint"])
def test_unfinished_trial_resumes_or_starts_over(tmp_path, straight, left):
    """What a trial finds in its folder: a checkpoint after epoch 1 is continued to the weights
    of an uninterrupted run; a run stopped before its first checkpoint (config and log only) or a
    damaged checkpoint is started over in the emptied folder."""
    trial, (straight, reference) = RESUMED, straight
    folder = tmp_path / "t"
    config = trial_module._config(trial)
    with pytest.raises(TrainingInterrupted):
        run_training(config, folder, reporter=CtrlCAt(2))  # as a killed trial leaves off
    if left == "no checkpoint":
        (folder / "checkpoint.npz").unlink()
    elif left == "damaged checkpoint":
        (folder / "checkpoint.npz").write_bytes(b"PK\x03\x04 not a checkpoint")
    result = run_trial(trial, folder)
    assert result["status"] == "finished" and result["epochs_completed"] == 3
    assert result["resumed_from"] == (1 if left == "checkpoint" else None)
    assert (result["note"] or "").startswith("started over: ") == (left == "damaged checkpoint")
    for name in ("val_error", "test_error", "best_epoch"):
        assert result[name] == straight[name]
    assert same_arrays(model_arrays(folder / "model.npz"), reference)


def _record(key, status, val_error=None, **options):
    return {"key": key, "status": status, "options": {"hidden": [16], "rate": 0.3, **options},
            "val_error": val_error, "test_error": None if val_error is None else val_error + 0.01,
            "best_epoch": 1, "epochs_completed": 1, "stop_reason": "epochs", "seconds": 1.0,
            "resumed_from": None, "note": None, "error": None if val_error else "boom",
            "folder": f"/x/{key}"}


def test_results_files_and_plot(tmp_path, monkeypatch):
    """finish() sorts nothing itself, writes the three tables, and draws the plot through
    jitnet.plots.figures.sweep_plot when it imports (a stand-in module here), else notes why not."""
    import types

    from jitnet.sweep.results import finish, format_table, sort_records

    records = sort_records([_record("b", "finished", 0.2, rate=1.0),
                            _record("c", "failed"), _record("a", "finished", 0.1, rate=0.1)])
    assert [r["key"] for r in records] == ["a", "b", "c"]
    calls = []
    plots = types.ModuleType("jitnet.plots.figures")
    plots.sweep_plot = lambda results, params, path: calls.append((results, params, path))
    monkeypatch.setitem(sys.modules, "jitnet.plots.figures", plots)
    result = finish(tmp_path, records, ["rate"], SweepReporter(), ran=3)
    assert result.best["key"] == "a" and result.best_command.endswith("--hidden 16 --rate 0.1")
    assert [[r["key"] for r in c[0]] for c in calls] == [["a", "b"]]
    assert [r["params"]["rate"] for r in calls[0][0]] == [0.1, 1.0]
    assert calls[0][1:] == (["rate"], tmp_path / "val_error.png")
    assert result.files["plot"] == tmp_path / "val_error.png" and not result.notes
    table = format_table(result).splitlines()
    assert [line.split()[:3] for line in table[1:]] == [["1", "0.1", "10.00%"],
                                                        ["2", "1", "20.00%"], ["3", "0.3", "-"]]
    assert table[3].endswith("failed: boom")
    csv_lines = (tmp_path / "results.csv").read_text().splitlines()
    assert csv_lines[0].startswith("key,status,rate,val_error") and csv_lines[1].startswith("a,")
    assert json.loads((tmp_path / "results.json").read_text())["trials"] == records

    finish(tmp_path, records, ["hidden"], SweepReporter())  # one layer each: plain sizes
    assert [r["params"]["hidden"] for r in calls[-1][0]] == [16, 16]
    assert [r["options"]["hidden"] for r in records] == [[16]] * 3

    def broken(results, params, path):
        raise RuntimeError("no backend")

    plots.sweep_plot = broken
    result = finish(tmp_path, records, ["rate"], SweepReporter())
    assert "plot" not in result.files and result.notes == ["no plot: RuntimeError: no backend"]
    monkeypatch.setitem(sys.modules, "jitnet.plots.figures", None)
    result = finish(tmp_path, records, ["rate"], SweepReporter())
    assert result.notes[0].startswith("no plot: jitnet.plots.figures.sweep_plot cannot be imported")


# -- run_sweep's checks, before any trial runs ------------------------------------------------


def test_without_dask_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(SweepError, match=r'pip install "jitnet\[sweep\]"'):
        run_sweep(parse_space(TINY), tmp_path)


def test_large_space_needs_yes(tmp_path):
    pytest.importorskip("distributed")
    space = parse_space({"hidden": ",".join(str(h) for h in range(10, 111))})
    with pytest.raises(SweepError, match="101 trials .more than 100.: pass --yes"):
        run_sweep(space, tmp_path)
    assert not (tmp_path / "trials").exists()


@pytest.mark.parametrize(
    "scheduler, workers, words",
    [
        ("tcp://127.0.0.1:{port}", None, "cannot connect"),
        ("nonsense://127.0.0.1:1", None, "not a scheduler address"),
        ("127.0.0.1:notaport", None, "not a scheduler address"),
        ("tcp://127.0.0.1:{port}", 2, "--workers sizes a local cluster"),
    ],
)
def test_bad_scheduler_fails_fast(tmp_path, monkeypatch, scheduler, workers, words):
    """Refused before any cluster starts or any trial folder is made: a bad address or option at
    once, an address nothing listens on after one connection attempt bounded by
    CONNECT_TIMEOUT (what each check costs is counted, not timed)."""
    import socket

    distributed = pytest.importorskip("distributed")
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    if words == "cannot connect":  # waits out the timeout (0.5 s; the default is 5 s)
        monkeypatch.setattr(runner, "CONNECT_TIMEOUT", "0.5s")
    clients = []
    real_client = distributed.Client

    def client(*args, **kwargs):
        clients.append(kwargs.get("timeout"))
        return real_client(*args, **kwargs)

    def no_cluster(*args, **kwargs):
        raise AssertionError("a local cluster was started")

    monkeypatch.setattr(distributed, "Client", client)
    monkeypatch.setattr(distributed, "LocalCluster", no_cluster)
    with pytest.raises(SweepError, match=words):
        run_sweep(parse_space(TINY), tmp_path, scheduler=scheduler.format(port=port),
                  workers=workers)
    # At most one connection attempt, and it is bounded (a bad scheme fails inside it at once).
    assert clients in ([], [runner.CONNECT_TIMEOUT])
    assert len(clients) == (1 if words == "cannot connect" or "nonsense" in scheduler else 0)
    assert not (tmp_path / "trials").exists()


def test_command_errors_are_one_line_exit_2(tmp_path):
    result = CliRunner().invoke(sweep_command, ["--out", str(tmp_path), "--hiden", "3"])
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: unknown option --hiden;")
    assert result.stderr.count("\n") == 1
    result = CliRunner().invoke(sweep_command, ["--out", str(tmp_path), "stray"])
    assert result.exit_code == 2 and "unexpected argument 'stray'" in result.stderr


# -- the command in jitnet's command line -----------------------------------------------------


def test_sweep_is_a_command_of_the_cli():
    from jitnet.cli.main import cli

    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert any(line.split()[:1] == ["sweep"] for line in result.stdout.splitlines())
    result = CliRunner().invoke(cli, ["sweep", "--out", "unused", "--hiden", "3"])
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: unknown option --hiden; a sweep can set --hidden, ")
    assert result.stderr.count("\n") == 1
    for param in sweep_command.params:
        if param.param_type_name == "option" and param.name != "help":
            assert all(re.fullmatch(r"--[a-z]+(-[a-z]+)*", opt) for opt in param.opts)
            assert param.help and param.help.endswith(".") and param.show_default, param.name


def test_sweep_help_is_fast_and_loads_neither_dask_nor_the_engine():
    code = ("import sys; from jitnet.cli.main import main; sys.argv = ['cli.py', 'sweep', '--help']\n"
            "try:\n    main()\nexcept SystemExit as exc:\n    assert exc.code == 0\n"
            "loaded = [m for m in ('numba', 'distributed', 'jitnet.training', 'jitnet.engine.network')\n"
            "          if m in sys.modules]\n"
            "assert not loaded, loaded")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert "--random-seed" in done.stdout
