"""Tables of labelled samples: ``.csv``, ``.tsv`` (plain or ``.gz``) and ``.parquet`` files, read
by pandas (with pyarrow for Parquet), the optional extra ``pip install "jitnet[tables]"``.

A table has a header line naming its columns, one sample per row: one label column (any kind
of class: :mod:`jitnet.data.labels`) and numeric feature columns (integers, floats or booleans),
with no missing values. Every problem is a one-line :class:`DataError` naming the file and,
where there is one, the column and the row (rows count from 1, the first row after the header).

Shapes: ``features: (N, n_features)`` float64 or float32, columns in the table's order;
``labels: (N,)`` the label column's values as read.
"""

import re
import warnings
from typing import NamedTuple

import numpy as np

from jitnet.io.atomic import display_path
from jitnet.io.errors import DataError, MissingDependencyError

__all__ = ["TABLE_SUFFIXES", "Table", "is_table", "read_rows", "read_table"]

#: Name endings read as tables, and their column separator (None: Parquet).
TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t", ".csv.gz": ",", ".tsv.gz": "\t",
                  ".parquet": None, ".pq": None}
#: Column names taken as the label when no ``label`` is given (any case), else the last column.
LABEL_NAMES = ("label", "target", "class", "y")
INSTALL = 'reading tables needs pandas and pyarrow: pip install "jitnet[tables]"'


class Table(NamedTuple):
    """A table read by :func:`read_table`."""

    features: np.ndarray
    labels: np.ndarray
    feature_names: tuple
    label_name: str


def is_table(path):
    """Whether ``path``'s name ends in one of :data:`TABLE_SUFFIXES`."""
    return _separator(path) is not False


def _separator(path):
    name = str(path).lower()
    for suffix, separator in TABLE_SUFFIXES.items():
        if name.endswith(suffix):
            return separator
    return False


def _pandas():
    try:
        import pandas
        if not hasattr(pandas, "read_csv"):
            raise ImportError
    except ImportError:
        raise MissingDependencyError(INSTALL) from None
    return pandas


def _frame(path):
    """The file as a pandas DataFrame; a DataError when it cannot be parsed."""
    pd = _pandas()
    where = display_path(path)
    separator = _separator(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # mixed-type chunks: their values are checked below
            if separator is None:
                frame = pd.read_parquet(path)
            else:
                frame = pd.read_csv(path, sep=separator)
    except ImportError:
        raise MissingDependencyError(INSTALL) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{where}: the table is empty (no header line naming its columns)") \
            from None
    except pd.errors.ParserError as error:
        raise DataError(f"{where}: {_parser_problem(error)}") from None
    except UnicodeDecodeError:
        raise DataError(f"{where}: not UTF-8 text") from None
    except OSError as error:
        raise DataError(f"{where}: cannot read ({error.strerror or error})") from None
    except Exception as error:  # noqa: BLE001 -- pyarrow and pandas raise many kinds on junk
        text = " ".join(str(error).split())[:200] or type(error).__name__
        raise DataError(f"{where}: not a readable table ({text})") from None
    if len(frame.columns) and len(frame) == 0:
        raise DataError(f"{where}: the table has a header but no rows")
    return frame


def _parser_problem(error):
    text = " ".join(str(error).split())
    ragged = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", text)
    if ragged:
        expected, line, found = ragged.groups()
        return f"ragged rows: line {line} has {found} fields, the header has {expected}"
    return f"not a readable table ({text[:200]})"


def _column_index(frame, label, where):
    """The position of the label column: ``label`` as a name, else as an index (negative
    from the end); None picks a column named like :data:`LABEL_NAMES`, else the last."""
    names = [str(c) for c in frame.columns]
    if label is None:
        lower = [n.lower() for n in names]
        for candidate in LABEL_NAMES:
            if candidate in lower:
                return lower.index(candidate)
        return len(names) - 1
    label = str(label)
    if label in names:
        return names.index(label)
    if re.fullmatch(r"-?\d+", label) and -len(names) <= int(label) < len(names):
        return int(label) % len(names)
    shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    raise DataError(f"{where}: no label column {label!r} (its columns: {shown})")


def _check_missing(frame, where):
    """A DataError naming the first missing value (the smallest row, then column)."""
    first = None
    for position, column in enumerate(frame.columns):
        missing = frame[column].isna().to_numpy()
        if missing.any():
            row = int(np.argmax(missing))
            if first is None or row < first[0]:
                first = (row, position, column)
    if first is not None:
        row, _, column = first
        raise DataError(f"{where}: missing value in column {str(column)!r} at row {row + 1}")


def _numeric(frame, column, where):
    """The column as numbers, or a DataError naming its first value that is not a number."""
    series = frame[column]
    if isinstance(series.dtype, np.dtype) and series.dtype.kind in "biuf":
        return series
    converted = _pandas().to_numeric(series, errors="coerce")
    bad = converted.isna().to_numpy()
    if bad.any() or converted.dtype.kind not in "biuf":
        row = int(np.argmax(bad))
        value = " ".join(str(series.iloc[row]).split())[:40]
        raise DataError(f"{where}: column {str(column)!r} is not numeric (row {row + 1} holds "
                        f"{value!r}); every column but the label must hold numbers")
    return converted


def _features(frame, columns, where, dtype):
    """The columns as one C-contiguous (N, len(columns)) array in ``dtype``, finite.

    Filled a tile of rows at a time (a few MB, so that it stays in cache) from each column's
    contiguous values: pandas keeps columns apart, and one transposing copy of the whole table
    would read it with a stride of a column's length.
    """
    dtype = np.dtype(dtype)
    arrays = [_numeric(frame, c, where).to_numpy() for c in columns]
    n = len(frame)
    out = np.empty((n, len(columns)), dtype)
    rows = max(64, (1 << 21) // (dtype.itemsize * len(columns)))
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, n, rows):
            tile = out[start : start + rows]
            for j, values in enumerate(arrays):
                tile[:, j] = values[start : start + rows]
            finite = np.isfinite(tile)
            if not finite.all():
                row, j = (int(i) for i in np.argwhere(~finite)[0])
                value = arrays[j][start + row]
                raise DataError(f"{where}: column {str(columns[j])!r} at row {start + row + 1} "
                                f"holds {value}, not a finite number in {dtype.name}")
    return out


def read_table(path, label=None, dtype=np.float64):
    """Read a labelled table.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.csv``, ``.tsv`` (either optionally ``.gz``), ``.parquet`` or ``.pq`` file.
    label : str or int, optional
        The label column: its name, else its index (0-based; negative from the end). Default:
        the column named ``label``, ``target``, ``class`` or ``y`` (any case), else the last.
    dtype : numpy floating dtype
        Of the features.

    Returns
    -------
    Table
        ``features`` (N, n_features) in ``dtype``; ``labels`` (N,), the label column as read
        (numbers, booleans or text); ``feature_names`` and ``label_name`` as in the header.

    Raises
    ------
    DataError
        One line naming the file: it cannot be read or parsed, has ragged rows, no rows, fewer
        than two columns, no such label column, a missing value (column and row), a feature
        column that is not numeric (its first value that is not a number, and its row) or a
        number beyond ``dtype``'s range.
    MissingDependencyError
        pandas (or, for Parquet, pyarrow) is not installed: ``pip install "jitnet[tables]"``.
    """
    where = display_path(path)
    frame = _frame(path)
    if len(frame.columns) < 2:
        raise DataError(f"{where}: a table needs a label column and at least one feature "
                        f"column; it has {len(frame.columns)} column(s)")
    position = _column_index(frame, label, where)
    _check_missing(frame, where)
    columns = [c for k, c in enumerate(frame.columns) if k != position]
    label_column = frame.columns[position]
    features = _features(frame, columns, where, dtype)
    labels = frame[label_column].to_numpy()
    return Table(features, labels, tuple(str(c) for c in columns), str(label_column))


def read_rows(path, columns=None, n_inputs=None, dtype=np.float64):
    """Read a table's feature rows (unlabelled samples to predict).

    Parameters
    ----------
    path : str or os.PathLike
    columns : sequence of str, optional
        The feature columns to take, in this order (the table may hold others, such as a
        label); default: every column, which must then be ``n_inputs`` numeric columns.
    n_inputs : int, optional
        The number of features expected.
    dtype : numpy floating dtype

    Returns
    -------
    ndarray, (N, n_features) in ``dtype``

    Raises
    ------
    DataError, MissingDependencyError
        As :func:`read_table`; also a column of ``columns`` that the table lacks, or a column
        count other than ``n_inputs``.
    """
    where = display_path(path)
    frame = _frame(path)
    names = {str(c): c for c in frame.columns}
    if columns is not None:
        missing = [c for c in columns if c not in names]
        if missing:
            raise DataError(f"{where}: no column {missing[0]!r}, a feature the model was "
                            f"trained on ({len(missing)} of its {len(columns)} are missing)")
        frame = frame[[names[c] for c in columns]]
    elif n_inputs is not None and len(frame.columns) != n_inputs:
        raise DataError(f"{where}: {len(frame.columns)} columns, but the model takes "
                        f"{n_inputs} features")
    _check_missing(frame, where)
    return _features(frame, list(frame.columns), where, dtype)

