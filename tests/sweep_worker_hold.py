"""Preloaded by the Dask workers of tests/test_sweep_cluster.py (``dask worker --preload``).

While the file named by $JITNET_TEST_HOLD_FILE exists, a trial started afresh (not one resumed
from its checkpoint) waits in its last epoch, for up to 10 minutes, until the file is removed.
The test that kills a worker mid-trial creates the file, so that however busy the machine is the
trial cannot end before the worker is killed; it removes the file once it has killed it.
"""

import os
import time
from pathlib import Path


def dask_setup(worker):
    marker = os.environ.get("JITNET_TEST_HOLD_FILE")
    if not marker:
        return
    from jitnet.training import Reporter

    def hold(n_done):
        end = time.monotonic() + 600
        while Path(marker).exists() and time.monotonic() < end:
            time.sleep(0.05)

    def epoch_start(self, epoch, epochs, n_samples):  # a resumed trial's reporter has its own
        return hold if epoch == epochs and Path(marker).exists() else None

    Reporter.epoch_start = epoch_start
