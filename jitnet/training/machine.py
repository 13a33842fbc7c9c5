"""A description of the machine and the software versions, for training reports and benchmarks.

Imports nothing heavy at module level; PyTorch and JAX versions are reported only when the process
has already imported them (this module never imports them).
"""

import os
import platform
import re
import sys


def cpu_model():
    """The CPU's model name from ``/proc/cpuinfo``, else what :mod:`platform` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cache_sizes():
    """Data/unified cache sizes in bytes by level (``{'L1': ..., 'L2': ...}``) from sysfs; empty
    where unavailable."""
    caches = {}
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        entries = sorted(os.listdir(base))
    except OSError:
        return caches
    units = {"K": 1024, "M": 1024**2, "G": 1024**3}
    for entry in entries:
        if not entry.startswith("index"):
            continue
        try:
            with open(f"{base}/{entry}/type") as f:
                kind = f.read().strip()
            with open(f"{base}/{entry}/level") as f:
                level = int(f.read())
            with open(f"{base}/{entry}/size") as f:
                size = f.read().strip()
        except (OSError, ValueError):
            continue
        number = re.match(r"\d+", size)
        if kind == "Instruction" or number is None:
            continue
        caches[f"L{level}"] = int(number.group()) * units.get(size[-1], 1)
    return caches


def _loaded_version(module_name):
    module = sys.modules.get(module_name)
    return getattr(module, "__version__", None) if module else None


def machine_info():
    """The machine and the software versions, as a JSON-ready dict.

    Returns
    -------
    dict
        ``cpu`` (model name), ``cpu_count``, ``usable_cores`` (this process's CPU affinity),
        ``caches`` (bytes by level), ``platform``, ``python``, ``numpy``, ``numba``,
        ``numba_threads`` (the most Numba may start), ``jitnet``, ``load_average`` (1 minute,
        where available), and ``torch``/``jax`` when they are imported.
    """
    import numba
    import numpy as np

    import jitnet

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    info = {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cores": usable,
        "caches": cache_sizes(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "numba_threads": int(numba.config.NUMBA_NUM_THREADS),  # the most it may use
        "jitnet": jitnet.__version__,
    }
    try:
        info["load_average"] = round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        pass
    for name in ("torch", "jax"):
        if _loaded_version(name):
            info[name] = _loaded_version(name)
    return info
