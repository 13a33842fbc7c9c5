"""``jitnet bench``: runs ``bench/compare.py`` of the source tree jitnet was loaded from.

The benchmark is not part of the installed package. Importing this module raises ImportError
with a one-line explanation when there is no ``bench/compare.py`` beside the package. A stopgap
until the command line loads the script itself; then this module goes.
"""

import importlib.util
import os
import sys

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench",
                      "compare.py")

if not os.path.isfile(SCRIPT):
    raise ImportError("the benchmark lives in the source tree's bench/ folder, which is not "
                      "installed: in a checkout of jitnet's repository run python bench/compare.py")


def main(argv=None):
    """Run ``bench/compare.py``'s ``main(argv)``; returns its exit status."""
    spec = importlib.util.spec_from_file_location("bench_compare", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.main(argv, prog_name="jitnet bench")
