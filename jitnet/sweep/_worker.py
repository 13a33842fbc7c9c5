"""Preloaded by every worker process of a sweep's LocalCluster.

The workers share the terminal's process group, so Ctrl-C reaches them too; the client handles it
(cancels the futures, closes the cluster), so a worker ignores it instead of dying with a
traceback of its own.
"""

import signal


def dask_setup(worker):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
