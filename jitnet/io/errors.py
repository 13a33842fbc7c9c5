"""The errors of reading files, shared by every reader above this package."""


class DataError(ValueError):
    """A data file (or an array handed in as data) is missing, malformed or inconsistent.

    The message names the file and says what is wrong, in one line.
    """


class MissingDependencyError(ImportError):
    """An optional dependency (matplotlib, Pillow, ...) is not installed; the message says which
    extra installs it."""
