"""The arrays of an open :class:`jitnet.io.npzfile.NpzArchive` as a read-only mapping, for
readers that check small entries and headers before they read large arrays (model files and
checkpoints: :mod:`jitnet.engine.model_file`), and the JSON objects they store as bytes."""

import json
from collections.abc import Mapping

import numpy as np


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


def json_object(arrays, key, max_bytes):
    """The JSON object stored as UTF-8 bytes in ``arrays[key]``, its header checked before it is
    read; a ValueError says what is wrong with it ("is not valid JSON")."""
    if hasattr(arrays, "describe"):
        shape, dtype = arrays.describe(key)
    else:
        try:
            array = np.asarray(arrays[key])
        except (TypeError, ValueError):
            raise ValueError("is not an array") from None
        shape, dtype = array.shape, array.dtype
    if dtype != np.uint8 or len(shape) != 1:
        raise ValueError(f"is not stored as bytes (a {dtype} array of shape {shape})")
    if shape[0] > max_bytes:
        raise ValueError(f"has {shape[0]:,} bytes, more than the {max_bytes:,} read")
    try:
        value = json.loads(np.asarray(arrays[key]).tobytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ValueError("is not valid JSON") from None
    if not isinstance(value, dict):
        raise ValueError(f"is {_short(value)}, not a JSON object")
    return value


def _short(value):
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
