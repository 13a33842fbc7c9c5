"""What ``jitnet train`` shows while it runs: the progress bar, log lines, quiet, the compile
notice."""

import io
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


@pytest.mark.parametrize("seconds, shown", [(0.3, True), (0.0, False)])
def test_a_slow_compile_is_announced(monkeypatch, seconds, shown):
    messages = []

    class Messages:
        def message(self, text):
            messages.append(text)

    def compile_kernels(dtype, x_dtype):
        time.sleep(seconds)
        return seconds

    monkeypatch.setattr(loop, "COMPILE_NOTICE_SECONDS", 0.1)
    monkeypatch.setattr(loop, "compile_kernels", compile_kernels)
    assert loop._compile("float64", "uint8", Messages()) == seconds
    time.sleep(0.15)  # a notice that was not cancelled would come now
    assert messages == (["compiling kernels (first run only, about 7 s)..."] if shown else [])
