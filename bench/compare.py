"""Training speed of every engine side by side: ``python bench/compare.py [--quick] [--help]``.

A thin wrapper: the benchmark lives in :mod:`jitnet.bench` so that ``jitnet bench`` works after a
plain (non-editable) install too. See bench/README.md for what is measured.
"""

import os
import sys

# Run from a source checkout without installing: put the repository root first on the path.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from jitnet.bench import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
