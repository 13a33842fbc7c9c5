"""The command line: a thin translation of options into library calls and of results into lines.

:mod:`~jitnet.cli.main` holds the click group and the shared option handling, ``train`` lives in
:mod:`~jitnet.cli.train` (its progress lines in :mod:`~jitnet.cli.console`, the run folder's
pictures in :mod:`~jitnet.cli.pictures`), ``evaluate``, ``predict``, ``plot`` and ``compare`` in
:mod:`~jitnet.cli.inspect` (the digits ``predict`` prints as text in :mod:`~jitnet.cli.digits`);
``sweep`` is :mod:`jitnet.sweep.command`. The library never imports this package.
"""
