"""Tables (jitnet.data.tables) and labels of any kind (jitnet.data.labels): what is read, and the
one-line error of every table that cannot be used."""

import gzip
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from jitnet.data.labels import encode_labels, encode_with
from jitnet.data.tables import read_rows, read_table
from jitnet.io.errors import DataError, MissingDependencyError

pd = pytest.importorskip("pandas")


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def one_line_error(call, *words, error=DataError):
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    assert "\n" not in message, message
    for word in words:
        assert word in message, message
    return message


# -- labels ----------------------------------------------------------------------------------


@pytest.mark.parametrize("values, names, codes", [
    ([3, 11, 7, 3], ("3", "7", "11"), [0, 2, 1, 0]),  # numbers in numeric order, with gaps
    ([3.0, 11.0, 7.0], ("3", "7", "11"), [0, 2, 1]),  # whole floats are those numbers
    (["setosa", "virginica", "setosa"], ("setosa", "virginica"), [0, 1, 0]),
    ([True, False, True], ("False", "True"), [1, 0, 1]),
    (np.array([b"b", b"a"]), ("a", "b"), [1, 0]),
    (np.array(["x", "y"], dtype=object), ("x", "y"), [0, 1]),
])
def test_labels_of_any_kind_become_classes_with_names(values, names, codes):
    got_codes, got_names = encode_labels(np.asarray(values), "f.csv")
    assert got_names == names
    assert got_codes.tolist() == codes and got_codes.dtype == np.uint8


def test_more_than_256_classes_take_uint16_codes():
    codes, names = encode_labels(np.arange(300)[::-1], "f")
    assert codes.dtype == np.uint16 and len(names) == 300 and codes[0] == 299


@pytest.mark.parametrize("values, words", [
    ([1.0, 1.5], ["label 1.5 at row 2 is not a class"]),
    ([1.0, np.nan], ["label missing (NaN) at row 2"]),
    (["a", "a"], ["one class only", "'a'"]),
    ([], ["no labels"]),
])
def test_labels_that_are_no_classes_are_one_line(values, words):
    one_line_error(lambda: encode_labels(np.asarray(values), "f.csv"), "f.csv", *words)


def test_a_second_file_is_encoded_by_the_first_files_names():
    assert encode_with(np.array([11, 3]), ("3", "7", "11"), "t").tolist() == [2, 0]
    assert encode_with(np.array(["11", "3"]), ("3", "7", "11"), "t").tolist() == [2, 0]
    one_line_error(lambda: encode_with(np.array([3, 4, 4]), ("3", "7"), "t.csv"),
                   "t.csv", "class '4' (row 2) is not one of the 2 classes")


# -- tables -----------------------------------------------------------------------------------


def test_a_csv_table_with_the_default_label_column(tmp_path):
    path = write(tmp_path / "t.csv", "a,Class,b\n1,x,2.5\n3,y,4\n5,x,true\n")
    with pytest.raises(DataError):  # 'true' in a numeric column
        read_table(path)
    path = write(tmp_path / "t.csv", "a,Class,b\n1,x,2.5\n3,y,4\n5,x,6\n")
    table = read_table(path)
    assert table.label_name == "Class" and table.feature_names == ("a", "b")
    assert table.features.tolist() == [[1, 2.5], [3, 4], [5, 6]]
    assert table.features.flags.c_contiguous and table.features.dtype == np.float64
    assert table.labels.tolist() == ["x", "y", "x"]


@pytest.mark.parametrize("label, name", [(None, "c"), ("a", "a"), ("1", "b"), ("-3", "a"),
                                         ("0", "a")])
def test_the_label_column_by_name_or_index(tmp_path, label, name):
    path = write(tmp_path / "t.csv", "a,b,c\n1,2,3\n4,5,6\n")
    assert read_table(path, label=label).label_name == name


def test_tsv_gz_and_parquet_read_the_same(tmp_path):
    frame = pd.DataFrame({"x": [0.5, 1.5, 2.5], "flag": [True, False, True],
                          "n": [1, 2, 3], "target": ["a", "b", "a"]})
    frame.to_csv(tmp_path / "t.tsv", sep="\t", index=False)
    (tmp_path / "t.csv.gz").write_bytes(gzip.compress(frame.to_csv(index=False).encode()))
    tables = [read_table(tmp_path / "t.tsv", dtype=np.float32),
              read_table(tmp_path / "t.csv.gz", dtype=np.float32)]
    pytest.importorskip("pyarrow")
    frame.to_parquet(tmp_path / "t.parquet")
    tables.append(read_table(tmp_path / "t.parquet", dtype=np.float32))
    for table in tables:
        assert table.features.dtype == np.float32
        assert table.features.tolist() == [[0.5, 1, 1], [1.5, 0, 2], [2.5, 1, 3]]
        assert table.labels.tolist() == ["a", "b", "a"] and table.label_name == "target"


@pytest.mark.parametrize("text, words", [
    ("", ["empty"]),
    ("a,b,label\n", ["header but no rows"]),
    ("label\n1\n2\n", ["needs a label column and at least one feature", "1 column"]),
    ("a,b,label\n1,2,x\n1,2,3,4\n", ["ragged rows: line 3 has 4 fields, the header has 3"]),
    ("a,b,label\n1,2,x\n1,,y\n", ["missing value in column 'b' at row 2"]),
    ("a,b,label\n1,2,x\n1,2\n", ["missing value in column 'label' at row 2"]),
    ("a,b,label\n1,2,x\n1,red,y\n", ["column 'b' is not numeric (row 2 holds 'red')"]),
    ("a,b,label\n1,inf,x\n1,2,y\n", ["column 'b' at row 1 holds inf"]),
    ("a,b,label\n1,2,x\n", ["no label column 'z'", "a, b, label"]),
])
def test_broken_tables_are_one_line_naming_the_file(tmp_path, text, words):
    path = write(tmp_path / "bad.csv", text)
    label = "z" if "'z'" in " ".join(words) else None
    one_line_error(lambda: read_table(path, label=label), str(path), *words)


def test_bytes_that_are_not_utf8_and_junk_parquet(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("a,label\n1,caf\u00e9\n".encode("latin-1"))
    one_line_error(lambda: read_table(path), str(path))
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"PAR1 not really")
    one_line_error(lambda: read_table(junk), str(junk), "not a readable table")


def test_without_pandas_one_line_says_which_extra(tmp_path, monkeypatch):
    path = write(tmp_path / "t.csv", "a,label\n1,x\n2,y\n")
    monkeypatch.setitem(sys.modules, "pandas", None)
    one_line_error(lambda: read_table(path), 'pip install "jitnet[tables]"',
                   error=MissingDependencyError)


def test_rows_to_predict_by_the_models_feature_names(tmp_path):
    path = write(tmp_path / "rows.csv", "b,label,a\n2,x,1\n4,y,3\n")
    assert read_rows(path, columns=("a", "b")).tolist() == [[1, 2], [3, 4]]
    one_line_error(lambda: read_rows(path, columns=("a", "c")), "no column 'c'")
    one_line_error(lambda: read_rows(write(tmp_path / "r.csv", "a,b\n1,2\n"), n_inputs=3),
                   "2 columns, but the model takes 3 features")


# -- damaged tables: the documented error or what pandas reads -------------------------------

TEXT = st.text(alphabet="abcxyz", min_size=1, max_size=3)


@st.composite
def damaged_tables(draw):
    """A valid labelled CSV, then one damage: bytes cut off, a byte replaced or inserted."""
    n_rows = draw(st.integers(2, 8))
    n_features = draw(st.integers(1, 3))
    values = draw(st.lists(st.lists(st.integers(-50, 50), min_size=n_features,
                                    max_size=n_features), min_size=n_rows, max_size=n_rows))
    labels = draw(st.lists(TEXT, min_size=n_rows, max_size=n_rows))
    lines = [",".join([f"f{j}" for j in range(n_features)] + ["label"])]
    lines += [",".join(map(str, row + [label])) for row, label in zip(values, labels)]
    data = bytearray(("\n".join(lines) + "\n").encode())
    kind = draw(st.sampled_from(["cut", "replace", "insert", "none"]))
    at = draw(st.integers(0, len(data) - 1))
    byte = draw(st.sampled_from(b',\n"x5.-\x00\xff '))
    if kind == "cut":
        del data[at:]
    elif kind == "replace":
        data[at] = byte
    elif kind == "insert":
        data.insert(at, byte)
    return bytes(data)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=damaged_tables())
@example(data=b"f0,label\n1,a\n2,b,3\n")
@example(data=b"f0,label\n1,a\n\xff,b\n")
def test_a_damaged_table_is_the_documented_error_or_what_pandas_reads(tmp_path, data):
    path = tmp_path / "damaged.csv"
    path.write_bytes(data)
    try:
        table = read_table(path)
    except DataError as exc:
        message = str(exc)
        assert message.startswith(str(path)) and "\n" not in message
        return
    frame = pd.read_csv(path)  # what we read must be what pandas reads, checked
    assert len(table.features) == len(frame) > 0
    expected = frame.drop(columns=table.label_name).apply(pd.to_numeric).to_numpy(float)
    assert np.array_equal(table.features, expected)
    assert np.isfinite(table.features).all()
    assert [str(v) for v in table.labels] == [str(v) for v in frame[table.label_name]]
