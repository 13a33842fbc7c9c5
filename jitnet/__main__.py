"""``python -m jitnet``: the command line, as ``jitnet`` and ``python cli.py``."""

from jitnet.cli.main import main

if __name__ == "__main__":
    main(prog_name="python -m jitnet")
