"""The header of an ``.npy`` array, parsed without evaluating it.

An ``.npy`` file (and each member of an ``.npz``) starts with ``\\x93NUMPY``, a version byte
pair, the header's length and a Python dict literal such as
``{'descr': '<f8', 'fortran_order': False, 'shape': (300, 784), }``. np.load evaluates that
literal; here it is tokenized and checked field by field, and only plain dtypes are accepted:
booleans, integers, floats, complex numbers and fixed-width strings, never objects (pickles).
"""

import math
import re
import struct
from typing import NamedTuple

import numpy as np

NPY_MAGIC = b"\x93NUMPY"
MAX_HEADER = 10_000  # bytes of one .npy header: numpy's own limit (it writes a few hundred)
_MAX_NDIM = 32  # numpy 1.x's limit
# Byte order, then bool / integers / floats / complex / fixed-width strings of 1 to 10**9 chars.
_DESCR = re.compile(r"[<>|=]?(?:b1|\?|[iu][1248]|f[248]|c8|c16|[US][1-9][0-9]{0,8})")
_TOKEN = re.compile(  # ASCII blanks, then punctuation | 'string' | "string" | digits | bool
    r"""[ \t\n\r]*(?:([{}():,\[\]])|'([^'\\]*)'|"([^"\\]*)"|([0-9]+)|(True|False)\b)"""
)


class ArrayHeader(NamedTuple):
    """What a member's ``.npy`` header declares, checked before any data is read."""

    shape: tuple
    dtype: np.dtype
    fortran_order: bool
    nbytes: int


def read_npy_header(reader, fail):
    """Parse the magic, version and header dict of an .npy member; return (ArrayHeader, bytes)."""
    start = reader.read(len(NPY_MAGIC) + 2)
    if start[: len(NPY_MAGIC)] != NPY_MAGIC or len(start) < len(NPY_MAGIC) + 2:
        fail("not an .npy array (no NUMPY magic)")
    version = tuple(start[len(NPY_MAGIC) :])
    if version not in ((1, 0), (2, 0), (3, 0)):
        fail(f".npy format version {version[0]}.{version[1]} is not supported")
    length_format = "<H" if version == (1, 0) else "<I"
    length_bytes = reader.read(struct.calcsize(length_format))
    if len(length_bytes) < struct.calcsize(length_format):
        fail("truncated .npy header")
    (length,) = struct.unpack(length_format, length_bytes)
    if length > MAX_HEADER:
        fail(f".npy header of {length} bytes, more than the {MAX_HEADER} read")
    text = reader.read(length)
    if len(text) < length:
        fail("truncated .npy header")
    try:
        text = text.decode("utf-8" if version == (3, 0) else "latin-1")
        fields = _parse_header_dict(text)
    except ValueError as error:
        fail(f"malformed .npy header ({error})")
    return _header_from_fields(fields, fail), len(start) + len(length_bytes) + length


def _parse_header_dict(text):
    """Parse the literal dict of an .npy header without evaluating it: string keys; string, bool
    or tuple-of-int values. Raise ValueError on anything else."""
    tokens = _tokenize(text)
    position = 0

    def peek():
        return tokens[position]

    def take(kind, value=None):
        nonlocal position
        token = tokens[position]
        if token[0] != kind or (value is not None and token[1] != value):
            raise ValueError(f"expected {value or kind!r}, found {token[1]!r}")
        position += 1
        return token[1]

    take("p", "{")
    fields = {}
    while peek() != ("p", "}"):
        key = take("s")
        take("p", ":")
        if peek() == ("p", "("):
            take("p", "(")
            items, commas = [], 0
            while peek() != ("p", ")"):
                items.append(take("n"))
                if peek() != ("p", ")"):
                    take("p", ",")
                    commas += 1
            take("p", ")")
            value = tuple(items) if commas or not items else items[0]  # "(3)" is 3, not a tuple
        elif peek()[0] in ("s", "n", "b"):
            value = take(peek()[0])
        else:
            raise ValueError(f"unexpected {peek()[1]!r}")
        if key in fields:
            raise ValueError(f"key {key!r} twice")
        fields[key] = value
        if peek() != ("p", "}"):
            take("p", ",")
    take("p", "}")
    take("end")
    return fields


def _tokenize(text):
    """Split header text into (kind, value) tokens: p(unctuation), s(tring), n(umber), b(ool)."""
    tokens, pos, end = [], 0, len(text.rstrip(" \t\n\r"))
    while pos < end:
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ValueError(f"unexpected text at character {pos}")
        punct, single, double, number, boolean = match.groups()
        if punct in ("[", "]"):
            raise ValueError("structured dtypes are not supported")
        if punct:
            tokens.append(("p", punct))
        elif number is not None:
            if len(number) > 20:
                raise ValueError("a number too long")
            tokens.append(("n", int(number)))
        elif boolean is not None:
            tokens.append(("b", boolean == "True"))
        else:
            tokens.append(("s", single if single is not None else double))
        pos = match.end()
    tokens.append(("end", None))
    return tokens


def _header_from_fields(fields, fail):
    """Check the header dict's three fields; return an ArrayHeader."""
    if sorted(fields) != ["descr", "fortran_order", "shape"]:
        fail(f"the .npy header has keys {sorted(fields)}, expected descr, fortran_order, shape")
    descr, fortran_order, shape = fields["descr"], fields["fortran_order"], fields["shape"]
    if not isinstance(descr, str) or not _DESCR.fullmatch(descr):
        kind = "pickled Python objects are never loaded" if "O" in str(descr) else (
            "only booleans, numbers and fixed-width strings are read")
        fail(f"unsupported dtype {descr!r}; {kind}")
    if not isinstance(fortran_order, bool):
        fail(f"fortran_order is {fortran_order!r}, not True or False")
    if not isinstance(shape, tuple):
        fail(f"shape {shape!r} is not a tuple of sizes")
    if len(shape) > _MAX_NDIM:
        fail(f"{len(shape)} dimensions; at most {_MAX_NDIM} are supported")
    try:
        dtype = np.dtype(descr)
    except (TypeError, ValueError):
        fail(f"unsupported dtype {descr!r}")
    return ArrayHeader(shape, dtype, fortran_order, math.prod(shape) * dtype.itemsize)
