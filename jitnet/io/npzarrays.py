"""The arrays of an open :class:`jitnet.io.npzfile.NpzArchive` as a read-only mapping, for
readers that check small entries and headers before they read large arrays (model files and
checkpoints: :mod:`jitnet.engine.model_file`)."""

from collections.abc import Mapping


class ArchiveArrays(Mapping):
    """The arrays of an open :class:`jitnet.io.npzfile.NpzArchive` as a read-only mapping.

    Looking a name up reads that array (each time: nothing is kept); ``in``, ``len``, iteration
    and :meth:`describe` use only the headers, which the archive has already checked. Used
    while the archive is open.
    """

    def __init__(self, archive, prefix=""):
        self.archive, self.prefix = archive, prefix

    def __getitem__(self, name):
        return self.archive.read(self.prefix + name)

    def __contains__(self, name):
        return isinstance(name, str) and self.prefix + name in self.archive.headers

    def __iter__(self):
        n = len(self.prefix)
        return (name[n:] for name in self.archive.headers if name.startswith(self.prefix))

    def __len__(self):
        return sum(1 for _ in self)

    def describe(self, name):
        """(shape, dtype) of an array as its header declares it; KeyError if there is none."""
        header = self.archive.headers[self.prefix + name]
        return header.shape, header.dtype

    def prefixed(self, prefix):
        """The arrays whose names start with ``prefix``, under the rest of their names."""
        return ArchiveArrays(self.archive, self.prefix + prefix)

    @property
    def where(self):
        """The file, as messages name it."""
        return self.archive.where


