"""Every public name is importable from ``jitnet`` itself, lazily."""

import os
import subprocess
import sys
from pathlib import Path

import jitnet


def test_every_public_name_resolves():
    for name in jitnet.__all__:
        assert getattr(jitnet, name) is not None, name
    from jitnet.engine.compile import compile_kernels

    assert jitnet.compile_kernels is compile_kernels
    assert jitnet.DataError is jitnet.data.idx.DataError  # one class, wherever it is named


def test_import_jitnet_loads_no_engine():
    """``import jitnet`` stays fast: Numba is loaded when a name is first used."""
    code = "import sys, jitnet; print('numba' in sys.modules, 'jitnet.engine' in sys.modules)"
    root = str(Path(jitnet.__file__).resolve().parent.parent)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": root})
    assert out.stdout.split() == ["False", "False"]
