"""What ``jitnet train`` shows while it runs: the progress bar, log lines, quiet, the compile
notice."""

import io
import threading
import time

import pytest

from jitnet.cli.console import ConsoleReporter, _duration
from jitnet.training import loop

RECORD = {"epoch": 3, "loss": 0.05, "rate": 0.3, "seconds": 0.5, "samples_per_second": 100000.0,
          "elapsed_seconds": 2.0}


def reporter(**kwargs):
    out, err = io.StringIO(), io.StringIO()
    return ConsoleReporter(out=out, err=err, **kwargs), out, err


def test_duration():
    assert [_duration(s) for s in (0.4, 7, 75, 3723)] == ["0:00", "0:07", "1:15", "1:02:03"]


def test_the_bar_shows_progress_speed_and_time_left_then_clears(monkeypatch):
    console, out, err = reporter(bar=True)
    clock = iter([100.0, 100.5, 101.0])
    monkeypatch.setattr(time, "perf_counter", lambda: next(clock))
    progress = console.epoch_start(3, 10, 50000)
    progress(25000)  # 25,000 samples in 0.5 s
    drawn = err.getvalue()
    assert "epoch 3/10 [############------------]  50%  50,000 samples/s" in drawn
    # 0.5 s left in this epoch, 7 more epochs of 1 s each
    assert "epoch 0:00 left, run at most 0:08" in drawn
    console.epoch_end({**RECORD, "val_error": 0.02})
    assert err.getvalue().endswith("\r\x1b[2K")  # the bar is cleared
    assert out.getvalue().startswith("epoch  3/10  loss 0.0500  val error 2.00%")


def test_the_bar_is_redrawn_at_most_ten_times_a_second(monkeypatch):
    console, out, err = reporter(bar=True)
    now = [0.0]
    monkeypatch.setattr(time, "perf_counter", lambda: now[0])
    progress = console.epoch_start(1, 1, 1000)
    for n in range(1, 1001):
        now[0] += 0.001  # a call every millisecond
        progress(n)
    assert 9 <= err.getvalue().count("\repoch") <= 12


def test_in_a_log_every_epoch_is_one_line():
    console, out, err = reporter(bar=False)
    assert console.epoch_start(1, 10, 100) is None
    console.epoch_end(RECORD)
    console.epoch_end({**RECORD, "epoch": 4, "test_error": 0.03})
    assert err.getvalue() == "epoch  3/10  loss 0.0500  100,000 samples/s  2.0 s\n"
    assert out.getvalue() == (
        "epoch  4/10  loss 0.0500  test error 3.00%  100,000 samples/s  2.0 s\n")


def test_quiet_shows_nothing():
    console, out, err = reporter(quiet=True, bar=True)
    assert console.epoch_start(1, 10, 100) is None
    console.message("compiling")
    console.epoch_end({**RECORD, "val_error": 0.1})
    assert out.getvalue() == err.getvalue() == ""


def test_a_message_clears_the_bar_first(monkeypatch):
    console, out, err = reporter(bar=True)
    console.epoch_start(1, 2, 100)(50)
    console.message("checkpoint saved")
    assert err.getvalue().endswith("\r\x1b[2Kcheckpoint saved\n")


NOTICE = "compiling kernels (first run only, about a minute)..."


class Messages:
    """A reporter that records its messages, and can wait for the first."""

    def __init__(self):
        self.texts, self.arrived = [], threading.Event()

    def message(self, text):
        self.texts.append(text)
        self.arrived.set()


@pytest.fixture
def timers(monkeypatch):
    """The timers _compile starts (real ones, recorded)."""
    started = []

    class Recorded(threading.Timer):
        def start(self):
            started.append(self)
            super().start()

    monkeypatch.setattr(loop.threading, "Timer", Recorded)
    return started


def test_a_slow_compile_is_announced_once_and_the_notice_is_then_cancelled(monkeypatch, timers):
    """A compile that outlasts the notice's delay shows the notice; "outlasts" is arranged by
    the fake compile waiting for the notice, not by sleeping against the delay, so a busy
    machine only makes the test wait longer."""
    messages = Messages()

    def compile_kernels(dtype, x_dtype):
        assert messages.arrived.wait(120), "the notice never came"
        return 42.0

    monkeypatch.setattr(loop, "COMPILE_NOTICE_SECONDS", 0.01)
    monkeypatch.setattr(loop, "compile_kernels", compile_kernels)
    assert loop._compile("float64", "uint8", messages) == 42.0
    assert messages.texts == [NOTICE]
    (timer,) = timers
    assert timer.interval == 0.01 and timer.finished.is_set() and timer.daemon


@pytest.mark.parametrize("fails", [False, True])
def test_a_fast_or_failing_compile_cancels_the_notice(monkeypatch, timers, fails):
    """The notice is cancelled when the compile returns or raises: its timer has finished
    without firing. (Its delay is long here, so it cannot fire while the test runs.)"""
    messages = Messages()

    def compile_kernels(dtype, x_dtype):
        assert len(timers) == 1 and timers[0].is_alive()  # started before the compile
        if fails:
            raise RuntimeError("no compiler")
        return 0.25

    monkeypatch.setattr(loop, "COMPILE_NOTICE_SECONDS", 600)
    monkeypatch.setattr(loop, "compile_kernels", compile_kernels)
    if fails:
        with pytest.raises(RuntimeError, match="no compiler"):
            loop._compile("float64", "uint8", messages)
    else:
        assert loop._compile("float64", "uint8", messages) == 0.25
    (timer,) = timers
    timer.join(60)  # a cancelled timer's thread ends at once
    assert timer.finished.is_set() and not timer.is_alive()
    assert messages.texts == []
