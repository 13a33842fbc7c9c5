"""jitnet.data.images: MNIST-style digits from image files, text art and output scores.

Real MNIST test digits are written in the ways a user's files come (inverted, enlarged and
off-centre, transparent, JPEG) and must come back close to the original.
"""

import struct
import sys
import zlib

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from jitnet.cli.digits import text_art
from jitnet.data.images import ImageError, load_digit, probabilities, save_digit

Image = pytest.importorskip("PIL.Image")
ImageDraw = pytest.importorskip("PIL.ImageDraw")

CORRELATION = 0.8  # load_digit(file of an MNIST digit) against the digit itself
CENTRE_OF_MASS = 1.0  # pixels


@pytest.fixture(scope="module")
def digits():
    """The first ten MNIST test digits whose centre of mass lies within 0.35 px of MNIST's
    (14, 14) on both axes: for a digit at a rounding boundary (13.5), whether the whole-pixel
    shift goes up or down is a coin toss, and a 1-px shift of thin strokes alone drops the
    correlation to about 0.6."""
    from jitnet import load_mnist

    test = load_mnist()[1]
    images = test.images.reshape(-1, 28, 28)
    central = [k for k in range(100)
               if np.abs(centre_of_mass(images[k]) - 14).max() < 0.35][:10]
    return images[central], test.labels[central]


def centre_of_mass(image):
    image = np.asarray(image, np.float64)
    ys, xs = np.indices(image.shape)
    return np.array([(ys * image).sum(), (xs * image).sum()]) / image.sum()


def correlation(a, b):
    return np.corrcoef(np.ravel(a).astype(float), np.ravel(b).astype(float))[0, 1]


def white_on_black(image, path):
    Image.fromarray(image).save(path)


def black_on_white(image, path):
    Image.fromarray(255 - image).save(path)


def enlarged_off_centre(image, path):
    big = Image.fromarray(255 - image).resize((84, 84), Image.Resampling.BICUBIC)
    canvas = Image.new("L", (200, 150), 255)  # 200 wide, 150 high, white paper
    canvas.paste(big, (105, 8))
    canvas.save(path)


def transparent(image, path):
    rgba = np.zeros((28, 28, 4), np.uint8)  # black ink whose opacity is the pixel value
    rgba[..., 3] = image
    Image.fromarray(rgba).save(path)


def light_ink_on_transparent(image, path):
    rgba = np.full((28, 28, 4), 255, np.uint8)  # white ink: invisible if put on white
    rgba[..., 3] = image
    Image.fromarray(rgba).save(path)


def jpeg(image, path):
    Image.fromarray(255 - image).convert("RGB").save(path, quality=90)


def phone_photo(image, path):
    """Pixels stored turned a quarter left, with EXIF orientation 6 saying "turn right"."""
    turned = Image.fromarray(255 - image).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    turned.convert("RGB").save(path, quality=95, exif=exif.tobytes())


WRITERS = [
    (white_on_black, "png"), (black_on_white, "png"), (enlarged_off_centre, "png"),
    (transparent, "png"), (light_ink_on_transparent, "png"), (jpeg, "jpg"),
    (black_on_white, "bmp"), (black_on_white, "gif"), (black_on_white, "tiff"),
    (phone_photo, "jpg"),
]


@pytest.mark.parametrize("write, ext", WRITERS, ids=[f"{w.__name__}-{e}" for w, e in WRITERS])
def test_load_digit_recovers_mnist_digits(tmp_path, digits, write, ext):
    images, labels = digits
    for k, image in enumerate(images):
        path = tmp_path / f"digit{k}.{ext}"
        write(image, path)
        result = load_digit(path)
        assert result.shape == (28, 28) and result.dtype == np.uint8
        r = correlation(result, image)
        shift = np.abs(centre_of_mass(result) - centre_of_mass(image)).max()
        assert r > CORRELATION, f"digit {k} (a {labels[k]}): correlation {r:.3f}"
        assert shift < CENTRE_OF_MASS, f"digit {k}: centre of mass moved {shift:.2f} px"


def test_a_digit_not_inverted_would_fail(tmp_path, digits):
    # The check above can fail: dark ink on white taken as is looks nothing like the digit.
    image = digits[0][0]
    assert correlation(255 - image, image) < 0


def test_load_digit_fits_the_digit_into_20_pixels_at_the_centre(tmp_path):
    canvas = Image.new("L", (300, 200), 230)  # a grey page with a dark ring far off-centre
    ImageDraw.Draw(canvas).ellipse([200, 20, 260, 140], outline=20, width=12)
    canvas.save(tmp_path / "ring.png")
    result = load_digit(tmp_path / "ring.png")
    rows = np.flatnonzero((result > 64).any(axis=1))
    cols = np.flatnonzero((result > 64).any(axis=0))
    assert 19 <= rows[-1] - rows[0] + 1 <= 21  # the longer side: 120 px -> 20
    assert 9 <= cols[-1] - cols[0] + 1 <= 12  # aspect ratio kept: 60 px -> 10
    np.testing.assert_allclose(centre_of_mass(result), [14, 14], atol=0.6)
    assert result[0].max() == result[-1].max() == result[:, 0].max() == 0


@pytest.mark.parametrize("shape", [(28, 28), (784,)])
def test_load_digit_reads_npy_arrays_as_they_are(tmp_path, digits, shape):
    image = digits[0][3]
    np.save(tmp_path / "d.npy", image.reshape(shape))
    np.testing.assert_array_equal(load_digit(tmp_path / "d.npy"), image)
    np.save(tmp_path / "f.npy", image.reshape(shape) / 255.0)
    np.testing.assert_array_equal(load_digit(tmp_path / "f.npy"), image)


def test_save_digit_writes_what_load_digit_gives(tmp_path, digits):
    image = load_digit_from(tmp_path, digits[0][5])
    save_digit(image, tmp_path / "seen.png")
    with Image.open(tmp_path / "seen.png") as saved:
        assert saved.mode == "L" and saved.size == (28, 28)
        np.testing.assert_array_equal(np.asarray(saved), image)


def load_digit_from(tmp_path, image):
    black_on_white(image, tmp_path / "in.png")
    return load_digit(tmp_path / "in.png")


# -- errors ----------------------------------------------------------------------------------


def png_header(width, height):
    """A PNG that claims the given size (its pixel data is a stub)."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))


def truncated_png(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 64), np.uint8)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    return data[: len(data) // 2]


@pytest.mark.parametrize("name, make, message", [
    ("corrupt.png", truncated_png, "cannot read the image"),
    ("garbage.png", lambda p: b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "cannot read|not an"),
    ("notes.txt", lambda p: b"seven\n", "not an image file"),
    ("empty.png", lambda p: b"", "not an image file"),
    ("bomb.png", lambda p: png_header(20000, 20000), "too large.*decompression bomb"),
    ("big.png", lambda p: png_header(10000, 10000), "too large"),  # above the warning limit
    ("short.npy", lambda p: b"\x93NUMPY", "cannot read as a .npy"),
])
def test_bad_files_raise_image_error_naming_the_file(tmp_path, name, make, message):
    path = tmp_path / name
    path.write_bytes(make(tmp_path))
    with pytest.raises(ImageError, match=message) as info:
        load_digit(path)
    text = str(info.value)
    assert str(path) in text and "\n" not in text
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("fill", [255, 0, 128, (200, 30, 30)])
def test_blank_images_raise_image_error(tmp_path, fill):
    Image.new("RGB" if isinstance(fill, tuple) else "L", (40, 30), fill).save(tmp_path / "b.png")
    with pytest.raises(ImageError, match="b.png: no digit found"):
        load_digit(tmp_path / "b.png")


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageError, match="nothing.png: no such file"):
        load_digit(tmp_path / "nothing.png")
    with pytest.raises(ImageError, match="cannot read the image"):
        load_digit(tmp_path)


def test_npy_of_the_wrong_shape(tmp_path):
    np.save(tmp_path / "w.npy", np.zeros((20, 20), np.uint8))
    with pytest.raises(ImageError, match=r"w.npy: .*\(28, 28\) or \(784,\), got \(20, 20\)"):
        load_digit(tmp_path / "w.npy")


def test_missing_pillow_says_how_to_install_it(tmp_path, monkeypatch, digits):
    from jitnet.plots.figures import MissingDependencyError

    black_on_white(digits[0][0], tmp_path / "d.png")
    monkeypatch.setitem(sys.modules, "PIL", None)  # "import PIL" now fails as if not installed
    with pytest.raises(MissingDependencyError, match=r'pip install "jitnet\[plots\]"'):
        load_digit(tmp_path / "d.png")
    np.save(tmp_path / "d.npy", digits[0][0])
    assert load_digit(tmp_path / "d.npy").shape == (28, 28)  # .npy needs only numpy


# -- property: any small image is a digit or the documented error -----------------------------

FORMATS = {"L": ["png", "jpeg", "bmp", "tiff"], "RGB": ["png", "jpeg", "tiff"],
           "RGBA": ["png", "tiff"], "LA": ["png"], "P": ["png", "gif", "bmp"], "1": ["png", "bmp"],
           "I;16": ["png"], "I": ["tiff"], "F": ["tiff"], "CMYK": ["jpeg", "tiff"]}


@st.composite
def image_files(draw):
    """A small image of any mode, with a few rectangles of any grey, in a format for its mode,
    sometimes damaged (cut short or with bytes overwritten)."""
    mode = draw(st.sampled_from(sorted(FORMATS)))
    fmt = draw(st.sampled_from(FORMATS[mode]))
    width, height = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    grey = Image.new("L", (width, height), draw(st.integers(0, 255)))
    for _ in range(draw(st.integers(0, 3))):
        x = sorted(draw(st.lists(st.integers(0, width - 1), min_size=2, max_size=2)))
        y = sorted(draw(st.lists(st.integers(0, height - 1), min_size=2, max_size=2)))
        ImageDraw.Draw(grey).rectangle([x[0], y[0], x[1], y[1]], fill=draw(st.integers(0, 255)))
    if mode == "I;16":
        image = Image.fromarray(np.asarray(grey).astype(np.uint16) * 257)
    else:
        image = grey.convert(mode)
    import io

    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    data = bytearray(buffer.getvalue())
    damage = draw(st.sampled_from(["none", "none", "cut", "overwrite"]))
    if damage == "cut":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif damage == "overwrite":
        at = draw(st.integers(0, len(data) - 1))
        data[at:at + 8] = draw(st.binary(min_size=8, max_size=8))
    return fmt, bytes(data)


@settings(max_examples=120, deadline=None)
@given(image_files())
@example(("png", png_header(1, 1)))
def test_any_image_gives_a_digit_or_image_error(tmp_path_factory, case):
    fmt, data = case
    path = tmp_path_factory.mktemp("h") / f"image.{fmt}"
    path.write_bytes(data)
    try:
        result = load_digit(path)
    except ImageError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
        return
    assert result.shape == (28, 28) and result.dtype == np.uint8
    assert result.max() > 0  # a digit was found, so some ink is there


@st.composite
def drawn_rings(draw):
    """An ellipse of any ink on any contrasting paper, anywhere on a canvas, in any format."""
    width, height = draw(st.integers(24, 160)), draw(st.integers(24, 160))
    w, h = draw(st.integers(8, width - 4)), draw(st.integers(8, height - 4))
    x, y = draw(st.integers(0, width - w - 1)), draw(st.integers(0, height - h - 1))
    paper = draw(st.integers(0, 255))
    ink = draw(st.integers(0, 255).filter(lambda v: abs(v - paper) >= 96))
    canvas = Image.new("L", (width, height), paper)
    stroke = max(2, max(w, h) // 12)  # a pen in proportion to the digit
    ImageDraw.Draw(canvas).ellipse([x, y, x + w, y + h], outline=ink, width=stroke)
    mode, fmt = draw(st.sampled_from([("L", "png"), ("RGB", "jpeg"), ("RGB", "bmp"),
                                      ("P", "gif")]))
    return canvas.convert(mode), fmt, max(w, h) / min(w, h)


@settings(max_examples=60, deadline=None)
@given(drawn_rings())
def test_a_drawn_ring_is_fitted_and_centred(tmp_path_factory, case):
    image, fmt, aspect = case
    path = tmp_path_factory.mktemp("r") / f"ring.{fmt}"
    image.save(path)
    result = load_digit(path)
    np.testing.assert_allclose(centre_of_mass(result), [14, 14], atol=0.6)
    ink = result > 64
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    longer = max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1
    assert 18 <= longer <= 22  # 20, give or take the soft edges of an enlarged small ring


# -- text art and scores ---------------------------------------------------------------------


def test_text_art_ramp_and_shapes():
    image = np.zeros(4, np.uint8)
    image[1], image[3] = 255, 128
    assert text_art(image).splitlines() == ["  @@", "  ++"]  # square: shape inferred
    assert text_art(image.reshape(2, 2)) == text_art(image, (2, 2))
    assert text_art(image, (1, 4), ramp=" #") == "  ##  ##"
    with pytest.raises(ValueError, match="shape"):
        text_art(np.zeros(6, np.uint8))


def test_text_art_of_a_loaded_digit(tmp_path, digits):
    art = text_art(load_digit_from(tmp_path, digits[0][0])).splitlines()
    assert len(art) <= 28 and all(len(line) <= 56 for line in art)
    assert "@" in "".join(art)


def test_probabilities_normalises_sigmoid_outputs():
    scores = probabilities([0.9, 0.1, 0.0, -0.2], "squared")
    np.testing.assert_allclose(scores, [0.9, 0.1, 0.0, 0.0])
    batch = probabilities([[0.3, 0.1], [0.0, 0.0]])
    np.testing.assert_allclose(batch, [[0.75, 0.25], [0.5, 0.5]])
    assert probabilities(np.array([0.2, 0.6]), "cross_entropy") == pytest.approx([0.25, 0.75])


@pytest.mark.parametrize("outputs, loss, message", [
    ([0.1, np.nan], "squared", "finite"),
    ([], "squared", "shape"),
    ([0.5, 0.5], "hinge", "loss must be"),
])
def test_probabilities_rejects_bad_input(outputs, loss, message):
    with pytest.raises(ValueError, match=message):
        probabilities(outputs, loss)
