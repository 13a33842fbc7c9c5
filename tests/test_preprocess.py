"""jitnet.Preprocessing (deslant and width normalisation, Meier et al. 2011) and a network that
carries one: what the transforms do to drawn strokes, an independent NumPy reference on MNIST,
the dtype contract, properties on random images and texts, and the network's calls, model
file (version 5), copies, ONNX refusal and committees."""

import copy
import pickle
import sys

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import jitnet
from jitnet import Network, Preprocessing
from jitnet.engine.preprocess import INK

#: The reference and the compiled kernels sum in different orders (and the kernels may fuse
#: multiply-adds): they agree to rounding, far inside this.
TOL = 1e-9
SPECS = ("deslant", "width:12", "deslant+width:12")


def moments(image):
    """(mass, centre row, centre column, slant cov(x, y) / var(y), column spread) of an image
    (rows, cols) with its pixel values as weights."""
    rows, cols = np.indices(image.shape)
    mass = image.sum()
    cy, cx = (image * rows).sum() / mass, (image * cols).sum() / mass
    vyy = (image * (rows - cy) ** 2).sum()
    vxy = (image * (rows - cy) * (cols - cx)).sum()
    spread = np.sqrt((image * (cols - cx) ** 2).sum() / mass)
    return mass, cy, cx, vxy / vyy, spread


# -- an independent reference, vectorised NumPy -----------------------------------------------


def ref_bilinear(image, y, x):
    """``image`` (rows, cols) read at the real positions (y, x) (arrays of one shape) by bilinear
    interpolation, zero outside."""
    rows, cols = image.shape
    r0, c0 = np.floor(y).astype(np.int64), np.floor(x).astype(np.int64)
    fy, fx = y - r0, x - c0
    total = np.zeros(np.broadcast(y, x).shape)
    for dr, wy in ((0, 1 - fy), (1, fy)):
        for dc, wx in ((0, 1 - fx), (1, fx)):
            r, c = r0 + dr, c0 + dc
            inside = (r >= 0) & (r < rows) & (c >= 0) & (c < cols)
            value = image[np.clip(r, 0, rows - 1), np.clip(c, 0, cols - 1)]
            total += np.where(inside, wy * wx * value, 0.0)
    return total


def ref_deslant(image):
    if image.sum() <= 0:
        return image.copy()
    _, cy, _, slant, _ = moments(image)
    rows, cols = np.indices(image.shape).astype(np.float64)
    return ref_bilinear(image, rows, cols + slant * (rows - cy))


def ref_width(image, width):
    brightest = image.max()
    if brightest <= 0:
        return image.copy()
    inked = np.flatnonzero((image > INK * brightest).any(axis=0))
    stretch = width / (inked[-1] - inked[0] + 1.0)
    cx = (image * np.arange(image.shape[1])).sum() / image.sum()
    rows, cols = np.indices(image.shape).astype(np.float64)
    return ref_bilinear(image, rows, cx + (cols - cx) / stretch)


def ref_apply(spec, X, shape):
    out = []
    for image in np.asarray(X, np.float64).reshape(-1, *shape):
        if spec.startswith("deslant"):
            image = ref_deslant(image)
        if "width:" in spec:
            image = ref_width(image, int(spec.split(":")[1]))
        out.append(image.reshape(-1))
    return np.array(out)


@pytest.mark.parametrize("spec", SPECS + ("width:20", "width:6"))
def test_the_kernels_agree_with_a_numpy_reference_on_mnist(mnist, spec):
    X = mnist[1].images[:200] / 255.0
    got = Preprocessing.parse(spec, (28, 28)).apply(X)
    want = ref_apply(spec, X, (28, 28))
    assert got.dtype == np.float64 and got.shape == X.shape
    assert np.abs(got - want).max() < TOL
    assert np.abs(got - X).max() > 0.5  # it did change the digits


# -- what the transforms do --------------------------------------------------------------------


def slanted_stroke(slope, shape=(28, 28), rows=range(4, 24), x0=13.0):
    """A one-pixel stroke x = x0 + slope * (y - cy), anti-aliased along x (each row's ink split
    between its two nearest columns), so that its moments slant is ``slope`` exactly."""
    image = np.zeros(shape)
    cy = (rows[0] + rows[-1]) / 2
    for y in rows:
        x = x0 + slope * (y - cy)
        c = int(np.floor(x))
        image[y, c], image[y, c + 1] = 1 - (x - c), x - c
    return image


@pytest.mark.parametrize("slope", [0.4, -0.3, 0.15])
def test_deslant_makes_a_slanted_stroke_upright(slope):
    image = slanted_stroke(slope)
    assert moments(image)[3] == pytest.approx(slope, abs=1e-12)
    out = Preprocessing.parse("deslant", (28, 28)).apply(image.reshape(1, -1)).reshape(28, 28)
    mass, cy, cx, slant, spread = moments(out)
    _, cy0, cx0, _, spread0 = moments(image)
    assert abs(slant) < 0.01
    # the columns' spread shrank to the interpolation's blur (a slanted stroke's: slope * 5.8)
    assert spread < 0.6 and spread0 > 0.9
    assert (cy, cx) == pytest.approx((cy0, cx0), abs=0.05)  # sheared about the ink's centre
    assert mass == pytest.approx(image.sum(), rel=1e-9)  # nothing sheared off the image
    # every row of the stroke holds its ink around column x0 = 13
    assert set(np.flatnonzero(out[4:24].max(axis=0) > 0.05)) <= {12, 13, 14}
    assert out[4:24, 13].min() > 0.5


def test_deslant_keeps_an_upright_symmetric_image():
    image = np.zeros((28, 28))
    image[5:23, 11:17] = 0.5  # an upright bar with a brighter ring: symmetric both ways
    image[5:23, (11, 16)] = 1.0
    image[(5, 22), 11:17] = 1.0
    out = Preprocessing.parse("deslant", (28, 28)).apply(image.reshape(1, -1))
    assert np.abs(out - image.reshape(1, -1)).max() < 1e-9


def test_a_blank_image_is_returned_as_it_is():
    blank = np.zeros((2, 28 * 28))
    for spec in SPECS:
        out = Preprocessing.parse(spec, (28, 28)).apply(blank)
        assert np.array_equal(out, blank)
        assert np.array_equal(Preprocessing.parse(spec, (28, 28)).apply(blank.astype(np.uint8)),
                              blank.astype(np.uint8))


def rectangle(width, shape=(28, 28), rows=slice(6, 22), left=12):
    image = np.zeros(shape)
    image[rows, left:left + width] = 1.0
    return image


def ink_columns(image, share=INK):
    return np.flatnonzero((image > share * image.max()).any(axis=0))


def ink_rows(image):
    return np.flatnonzero((image > 1e-12).any(axis=1))


@pytest.mark.parametrize("width, target", [(4, 12), (4, 20), (10, 5), (3, 8), (6, 6)])
def test_width_stretches_the_ink_to_the_width_asked(width, target):
    image = rectangle(width)
    out = Preprocessing.parse(f"width:{target}", (28, 28)).apply(image.reshape(1, -1))
    out = out.reshape(28, 28)
    # The box's edges (half its brightness) now lie `target` columns apart ...
    assert abs(len(ink_columns(out, 0.5)) - target) <= 1
    # ... and bilinear reading ramps them over one input pixel (stretch output columns), so
    # that the faint ink (above INK) reaches up to 0.4 * stretch columns further on each side.
    stretch = target / width
    assert target - 1 <= len(ink_columns(out)) <= target + 0.8 * stretch + 1
    columns = ink_columns(out)
    assert columns[-1] - columns[0] + 1 == len(columns)  # still one block
    assert np.array_equal(ink_rows(out), ink_rows(image))  # the rows stay
    for row in out[6:22]:
        assert np.array_equal(row, out[6])  # each row stretched alike
    assert moments(out)[2] == pytest.approx(moments(image)[2], abs=1e-9)  # about its centre


def test_width_of_an_image_already_that_wide_is_the_identity(mnist):
    image = rectangle(12)
    out = Preprocessing.parse("width:12", (28, 28)).apply(image.reshape(1, -1))
    assert np.abs(out - image.reshape(1, -1)).max() < 1e-9
    # a digit: stretched to its own width, it stays as it was
    digit = mnist[1].images[0] / 255.0
    columns = ink_columns(digit.reshape(28, 28))
    own = Preprocessing.parse(f"width:{columns[-1] - columns[0] + 1}", (28, 28))
    assert np.abs(own.apply(digit[None]) - digit).max() < 1e-9


def test_deslant_then_width_is_the_two_in_order(mnist):
    X = mnist[1].images[:20] / 255.0
    both = Preprocessing.parse("deslant+width:16", (28, 28)).apply(X)
    one_by_one = Preprocessing.parse("width:16", (28, 28)).apply(
        Preprocessing.parse("deslant", (28, 28)).apply(X))
    assert np.array_equal(both, one_by_one)


# -- dtype and shape contract ------------------------------------------------------------------


@pytest.mark.parametrize("spec", SPECS)
def test_types_and_shapes(mnist, spec):
    p = Preprocessing.parse(spec, (28, 28))
    raw = mnist[1].images[:30]
    out8 = p.apply(raw)
    assert out8.dtype == np.uint8 and out8.shape == raw.shape
    as_float = p.apply(raw.astype(np.float64))
    assert np.array_equal(out8, np.clip(np.rint(as_float), 0, 255).astype(np.uint8))
    for dtype in (np.float32, np.float64):
        out = p.apply((raw / 255.0).astype(dtype))
        assert out.dtype == np.float64 and out.shape == raw.shape
    assert not np.shares_memory(p.apply(raw / 255.0), raw)
    bad = raw / 255.0
    bad[3, 100] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        p.apply(bad)
    bad[3, 100] = np.inf
    with pytest.raises(ValueError, match="infinite"):
        p.apply(bad)
    for shape in [(30, 783), (784,), (2, 28, 28)]:
        with pytest.raises(ValueError, match="28x28"):
            p.apply(np.zeros(shape))


@pytest.mark.parametrize("text, want", [
    ("deslant", Preprocessing(True, None, (4, 5))),
    ("width:7", Preprocessing(False, 7, (4, 5))),
    (" Deslant + WIDTH:07 ", Preprocessing(True, 7, (4, 5))),
    ("none", None), (None, None), ("NONE", None),
])
def test_parse(text, want):
    assert Preprocessing.parse(text, (4, 5)) == want


@pytest.mark.parametrize("text, words", [
    ("width:12+deslant", "comes once, first"),
    ("deslant+deslant", "comes once, first"),
    ("width:3+width:4", "'width:W' comes once"),
    ("width:0", "1 to 4096"),
    ("width:5000", "1 to 4096"),
    ("width:-3", "'deslant' or 'width:W'"),
    ("width:", "'deslant' or 'width:W'"),
    ("deslant+", "'deslant' or 'width:W'"),
    ("", "'deslant' or 'width:W'"),
    ("deskew", "'deslant' or 'width:W'"),
])
def test_parse_refuses_with_one_line(text, words):
    with pytest.raises(ValueError, match=words) as error:
        Preprocessing.parse(text, (28, 28))
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("shape", [(0, 4), (4, -1), (4,), "28x28", None, (2, 3, 4)])
def test_parse_refuses_a_bad_shape(shape):
    with pytest.raises(ValueError, match="rows, cols|at least 1x1"):
        Preprocessing.parse("deslant", shape)


# -- properties -------------------------------------------------------------------------------


@st.composite
def images(draw):
    rows, cols = draw(st.integers(1, 10)), draw(st.integers(1, 10))
    n = draw(st.integers(1, 3))
    if draw(st.booleans()):
        values = st.integers(0, 255)
        dtype = np.uint8
    else:
        values = st.floats(0, 1, width=draw(st.sampled_from([32, 64])))
        dtype = draw(st.sampled_from([np.float32, np.float64]))
    # sparse images (mostly background) as often as dense ones
    zero_share = draw(st.sampled_from([0.0, 0.7, 0.95]))
    X = np.array(draw(st.lists(values, min_size=n * rows * cols, max_size=n * rows * cols)),
                 dtype=dtype).reshape(n, rows * cols)
    mask = np.array(draw(st.lists(st.floats(0, 1), min_size=X.size, max_size=X.size)))
    X[mask.reshape(X.shape) < zero_share] = 0
    return X, (rows, cols)


@settings(max_examples=150)
@given(images(), st.sampled_from(["deslant", "width:{}", "deslant+width:{}"]),
       st.integers(1, 12))
@example((np.array([[0, 0, 255, 0, 0, 0]], np.uint8), (2, 3)), "deslant", 1)  # one ink row
@example((np.array([[0.0, 1e-300, 0.0, 1.0]]), (2, 2)), "deslant", 1)  # a denormal moment
def test_property_any_small_image(image, template, width):
    X, shape = image
    p = Preprocessing.parse(template.format(width), shape)
    out = p.apply(X)
    assert out.shape == X.shape
    if X.dtype == np.uint8:
        assert out.dtype == np.uint8  # 0..255 by its type
    else:
        assert out.dtype == np.float64 and np.isfinite(out).all()
        # bilinear sampling with zeros outside: convex combinations of pixels and 0
        lo, hi = min(0.0, float(X.min())), float(X.max())
        slack = 1e-12 * max(1.0, hi)
        assert out.min() >= lo - slack and out.max() <= hi + slack
    assert np.array_equal(p.apply(X[:1]), out[:1])  # each image on its own


SPEC_PARTS = st.sampled_from(["deslant", "DESLANT", "width:", "width:0", "width:16", "+", " ",
                              "none", "4096", "4097", "x", ":", "\n"])


@settings(max_examples=300)
@given(st.one_of(st.text(max_size=30), st.lists(SPEC_PARTS, max_size=5).map("".join)))
@example("deslant+width:4096")
@example("width:0004")
@example("deslant\n")
def test_property_parse_refuses_or_round_trips(text):
    try:
        p = Preprocessing.parse(text, (3, 7))
    except ValueError as error:
        assert "\n" not in str(error) and str(error).startswith("preprocessing ")
        return
    if p is None:
        assert text.strip().lower() == "none"
        return
    assert isinstance(p.deslant, bool) and p.image_shape == (3, 7)
    assert p.deslant or p.width is not None
    assert Preprocessing.parse(str(p), (3, 7)) == p
    assert str(Preprocessing.parse(str(p), (3, 7))) == str(p)


# -- a network that carries a preprocessing -------------------------------------------------


@pytest.fixture(scope="module")
def raw(mnist):
    return mnist[1].images[:300]


def preprocessing_net(spec="deslant+width:16", dtype="float64", seed=1):
    net = Network([784, 16, 10], dtype=dtype, seed=seed)
    net.preprocessing = Preprocessing.parse(spec, (28, 28))
    return net


def plain_copy(net):
    other = net.copy()
    other.preprocessing = None
    return other


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_network_preprocesses_raw_images_in_every_call(raw, mnist, spec, dtype):
    net = preprocessing_net(spec, dtype)
    plain = plain_copy(net)
    p = net.preprocessing
    done = p.apply(raw)
    assert not np.array_equal(done, raw)
    assert np.array_equal(net.predict(raw), plain.predict(done))
    assert np.array_equal(net.predict(raw[7]), plain.predict(done[7]))
    assert np.array_equal(net.classify(raw), plain.classify(done))
    labels = mnist[1].labels[:300]
    assert net.evaluate(raw, labels) == plain.evaluate(done, labels)
    floats = (raw / 255.0).astype(np.float32)
    assert np.array_equal(net.predict(floats), plain.predict(p.apply(floats)))
    for (dW, db), (pW, pb) in zip(net.gradient(raw[3], labels[3]),
                                  plain.gradient(done[3], labels[3])):
        assert np.array_equal(dW, pW) and np.array_equal(db, pb)
    # training: the same steps as the plain network on preprocessed images
    net.train(raw[:100], labels[:100], rate=0.1, epochs=1)
    plain.train(done[:100], labels[:100], rate=0.1, epochs=1)
    assert np.array_equal(net.params, plain.params)
    # without the preprocessing the network sees other inputs: other outputs
    assert not np.array_equal(net.predict(raw), plain.predict(raw))


def test_the_scale_policy_judges_the_raw_images(raw):
    net = preprocessing_net()
    with pytest.raises(ValueError, match="raw 0-255 pixels"):
        net.predict(raw.astype(np.float64))
    plain = plain_copy(net)
    done = net.preprocessing.apply(raw.astype(np.float64))
    assert np.array_equal(net.predict(raw.astype(np.float64), scale=1 / 255),
                          plain.predict(done, scale=1 / 255))


def test_setting_a_preprocessing_is_checked():
    net = Network([784, 8, 10], seed=0)
    assert net.preprocessing is None
    with pytest.raises(ValueError, match="784 inputs"):
        net.preprocessing = Preprocessing.parse("deslant", (20, 20))
    with pytest.raises(ValueError, match="jitnet.Preprocessing or None"):
        net.preprocessing = "deslant"
    with pytest.raises(ValueError, match="does nothing"):
        net.preprocessing = Preprocessing(False, None, (28, 28))
    with pytest.raises(ValueError, match="1 to 4096"):
        net.preprocessing = Preprocessing(False, 0, (28, 28))
    net.preprocessing = Preprocessing(1, None, [28, 28])  # made canonical
    assert net.preprocessing == Preprocessing(True, None, (28, 28))
    assert type(net.preprocessing.deslant) is bool
    assert isinstance(net.preprocessing.image_shape, tuple)
    net.preprocessing = Preprocessing.parse("width:10", (14, 56))  # any shape of 784 pixels
    assert net.preprocessing.image_shape == (14, 56)
    net.preprocessing = None
    assert net.preprocessing is None


def test_standardization_and_preprocessing_exclude_each_other():
    net = Network([784, 8, 10], seed=0)
    net.preprocessing = Preprocessing.parse("deslant", (28, 28))
    with pytest.raises(ValueError, match="preprocesses images cannot standardize"):
        net.standardization = (np.zeros(784), np.ones(784))
    assert net.standardization is None
    net.preprocessing = None
    net.standardization = (np.zeros(784), np.ones(784))
    with pytest.raises(ValueError, match="standardizes its inputs cannot preprocess"):
        net.preprocessing = Preprocessing.parse("deslant", (28, 28))
    assert net.preprocessing is None


def test_copies_and_pickles_keep_it(raw):
    net = preprocessing_net()
    want = net.predict(raw)
    for other in (net.copy(), copy.copy(net), copy.deepcopy(net),
                  pickle.loads(pickle.dumps(net))):
        assert other.preprocessing == net.preprocessing
        assert np.array_equal(other.predict(raw), want)


def save_arrays(path, arrays):
    np.savez(path, **arrays)
    return path


@pytest.fixture
def saved(tmp_path):
    net = preprocessing_net()
    path = tmp_path / "m.npz"
    net.save(path)
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    return net, path, arrays


def test_a_model_file_keeps_it_as_version_5(saved, raw, tmp_path):
    net, path, arrays = saved
    assert int(arrays["format_version"]) == 5
    assert str(arrays["preprocessing"]) == "deslant+width:16"
    assert arrays["preprocessing_shape"].tolist() == [28, 28]
    loaded = Network.load(path)
    assert loaded.preprocessing == net.preprocessing
    assert np.array_equal(loaded.predict(raw), net.predict(raw))
    # a network without one is written as an older jitnet reads it
    plain = plain_copy(net)
    plain.save(tmp_path / "plain.npz")
    with np.load(tmp_path / "plain.npz") as f:
        assert int(f["format_version"]) <= 4 and "preprocessing" not in f.files
    plain.input_scale, plain.class_names = 1 / 255, tuple("abcdefghij")
    plain.save(tmp_path / "plain.npz")
    with np.load(tmp_path / "plain.npz") as f:
        assert int(f["format_version"]) == 4
    assert Network.load(tmp_path / "plain.npz").preprocessing is None
    # non-square images of the same size
    other = Network([784, 4, 10], seed=0)
    other.preprocessing = Preprocessing.parse("width:9", (16, 49))
    other.save(tmp_path / "wide.npz")
    assert Network.load(tmp_path / "wide.npz").preprocessing.image_shape == (16, 49)


def _without(*keys):
    return lambda arrays: {k: v for k, v in arrays.items() if k not in keys}


def _with(**entries):
    return lambda arrays: {**arrays, **entries}


@pytest.mark.parametrize("damage, words", [
    (_without("preprocessing_shape"), "'preprocessing' without 'preprocessing_shape'"),
    (_without("preprocessing"), "missing 'preprocessing'"),
    (_with(preprocessing_shape=np.array([28, 28, 1])), "not 2 integers"),
    (_with(preprocessing_shape=np.array([28.0, 28.0])), "not 2 integers"),
    (_with(preprocessing_shape=np.array(784)), "not 2 integers"),
    (_with(preprocessing_shape=np.array([20, 20])), "20x20 images"),
    (_with(preprocessing_shape=np.array([-28, -28])), "at least 1x1"),
    (_with(preprocessing=np.array("bogus")), "'deslant' or 'width:W'"),
    (_with(preprocessing=np.array("width:0")), "1 to 4096"),
    (_with(preprocessing=np.array("none")), "stored as no entry"),
    (_with(preprocessing=np.array(["deslant", "width:3"])), "not one text"),
    (_with(preprocessing=np.array(3)), "not one text"),
    (_with(format_version=np.array(6)), "version 6"),
])
def test_a_damaged_model_file_gives_one_line_naming_it(saved, tmp_path, damage, words):
    _, _, arrays = saved
    path = save_arrays(tmp_path / "damaged.npz", damage(arrays))
    with pytest.raises(jitnet.ModelFileError) as error:
        Network.load(path)
    message = str(error.value)
    assert "\n" not in message and "damaged.npz" in message and words in message, message


def test_a_version_5_file_without_a_preprocessing_loads_plain(saved, tmp_path):
    _, _, arrays = saved
    path = save_arrays(tmp_path / "v5.npz",
                       _without("preprocessing", "preprocessing_shape")(arrays))
    assert Network.load(path).preprocessing is None


def test_onnx_export_is_refused_before_onnx_is_needed(monkeypatch):
    net = preprocessing_net()
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` fails from here on
    with pytest.raises(ValueError, match="preprocesses its images .deslant\\+width:16. to ONNX"):
        net.to_onnx()
    committee = jitnet.Committee([plain_copy(net), net])
    with pytest.raises(ValueError, match="to ONNX"):
        committee.to_onnx()


def test_a_committee_of_a_preprocessing_and_a_plain_member(raw, mnist):
    prep = preprocessing_net(seed=1)
    plain = Network([784, 16, 10], seed=2)
    committee = jitnet.Committee([prep, plain])
    want = (prep.predict(raw) + plain.predict(raw)) / 2
    assert np.array_equal(committee.predict(raw), want)
    # the preprocessing member's outputs are those of its raw images preprocessed
    assert not np.array_equal(committee.predict(raw),
                              (plain_copy(prep).predict(raw) + plain.predict(raw)) / 2)
    labels = mnist[1].labels[:300]
    assert committee.evaluate(raw, labels) == np.mean(np.argmax(want, axis=1) != labels)


def test_a_committee_folder_keeps_its_members_preprocessing(raw, tmp_path):
    prep = preprocessing_net(seed=1)
    committee = jitnet.Committee([prep, Network([784, 16, 10], seed=2)])
    loaded = jitnet.Committee.load(committee.save(tmp_path / "c"))
    assert np.array_equal(loaded.predict(raw), committee.predict(raw))
