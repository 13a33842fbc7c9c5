"""Command line entry point: ``python cli.py train --hidden 300`` (same as the ``jitnet`` script)."""

from jitnet.cli.main import main

if __name__ == "__main__":
    main()
