"""The benchmark harness behind ``bench/compare.py`` and ``bench/scaling.py``.

It lives in the source tree, not in the installed package. One job per module:

engines     the engines under test behind one interface (stage, warm_up, run, weights)
validation  train every engine from the same start and compare the weights, before timing
timing      one thread per engine, timed repeats and their median, kernel compile times
results     number formats, tables, the machine line, the JSON and markdown files
options     the command-line pieces the scripts share; errors end in one line
"""


class BenchError(Exception):
    """A benchmark cannot run as asked; the scripts print its message as one line."""

    exit_code = 2
