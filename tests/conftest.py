"""Fixtures shared by the test modules (plain helpers are in tests/helpers.py).

The suite must pass on any x86-64 machine, busy or idle, with one core or many:
- Hypothesis never fails a test for its wall time (no deadline, no "too slow" health check):
  another process on the machine may slow any example down.
- ``many_cores`` lets a test run a team of threads on a machine with fewer cores than ranks
  (slower, never wrong), where the library would refuse ``threads`` > usable cores.
"""

import pytest
from hypothesis import HealthCheck, settings

from helpers import pictures_off

settings.register_profile("jitnet", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("jitnet")


@pytest.fixture(scope="module")
def mnist():
    """The shipped MNIST (train, test), read once per module (its arrays are writable: a module
    that changed them would change them only for itself)."""
    from jitnet.data.datasets import load_mnist

    return load_mnist()


@pytest.fixture
def many_cores(monkeypatch):
    """Let a test run more ranks than this machine has cores (slower, never wrong)."""
    from jitnet.engine import parallel

    monkeypatch.setattr(parallel, "usable_cores", lambda: 8)


@pytest.fixture
def in_tmp_path(tmp_path, monkeypatch):
    """Run the test in its own temporary directory (where ``train`` makes its runs/ folder)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def no_pictures():
    """The module's runs of the command line draw no pictures (see helpers.pictures_off)."""
    with pictures_off():
        yield
