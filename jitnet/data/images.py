"""Digits from image files, made to look like MNIST's, and the scores of a network's outputs.

``load_digit(path)`` turns a photo, scan or drawing of one digit into a (28, 28) uint8 image the
way MNIST's images were made: white ink on black, the digit fitted into a 20x20 box keeping its
aspect ratio, anti-aliased, and placed in the 28x28 field so that its centre of mass is at the
field's centre. Needs Pillow (``pip install "jitnet[plots]"``); ``.npy`` files need only numpy.

Shapes: an image is (rows, cols) uint8, 0 = background, 255 = ink; ``outputs`` are (n_classes,)
or (N, n_classes).
"""

import math
import os
import warnings

import numpy as np

__all__ = ["ImageError", "load_digit", "save_digit", "probabilities", "FIELD", "BOX"]

FIELD = 28  # MNIST's field: 28x28 pixels...
BOX = 20  # ...with the digit fitted into a 20x20 box inside it
CENTRE = 14.0  # where MNIST's centres of mass lie (row and column index; measured mean 14.0)
_BBOX_LEVEL = 0.25  # ink above this fraction of the strongest stroke defines the digit's extent
_MIN_CONTRAST = 24  # grey levels between ink and background below which an image is blank


_ORIENTATION = 0x0112  # the EXIF tag
_UPRIGHT = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE",
            6: "ROTATE_270", 7: "TRANSVERSE", 8: "ROTATE_90"}


class ImageError(ValueError):
    """An image file that cannot be turned into a digit; the message names the file."""


def _pillow():
    try:
        from PIL import Image
    except ImportError:
        from jitnet.io.errors import MissingDependencyError

        raise MissingDependencyError(
            'reading image files needs Pillow: pip install "jitnet[plots]"'
        ) from None
    return Image


def load_digit(path, shape=None):
    """Read one handwritten digit from an image file as an MNIST-style (28, 28) uint8 image
    (or of ``shape``).

    Any format Pillow reads (PNG, JPEG, GIF, BMP, TIFF, WebP, ...), as MNIST's images were made:

    1. transparency is composited on white and colour becomes grey;
    2. a light background is inverted to black: the background is the median of the border
       pixels, light when nearer the lightest pixel than the darkest;
    3. the background level and its noise go to 0 and the strongest ink to 255;
    4. the ink's bounding box is scaled (LANCZOS, anti-aliased) so that its longer side is 20
       pixels, keeping the aspect ratio;
    5. it is placed in the 28x28 field with its centre of mass at pixel (14, 14), shifted by
       whole pixels (a digit whose centre of mass lies near one end moves only as far as the
       field allows).

    A ``.npy`` file holding a (28, 28) or (784,) array of 0-255 (or 0-1 floats) is taken as
    already prepared and returned as uint8.

    For another ``shape`` (a model trained on images of that size), the 28x28 digit is then
    resized to it (LANCZOS), and a ``.npy`` file must hold an array of that shape.

    Parameters
    ----------
    path : str or os.PathLike
    shape : (int, int), optional
        (rows, cols) of the result; default (28, 28).

    Returns
    -------
    ndarray of uint8, (28, 28)
        0 is background, 255 the strongest ink.

    Raises
    ------
    ImageError
        The file is missing, unreadable, not an image, corrupt or truncated, larger than Pillow's
        decompression-bomb limit, or holds no visible digit (a blank or single-colour image).
    MissingDependencyError
        Pillow is not installed (only for formats other than ``.npy``).
    """
    name = os.fspath(path)
    shape = (FIELD, FIELD) if shape is None else tuple(shape)
    if str(name).lower().endswith(".npy"):
        return _load_npy(name, shape)
    digit = _mnist_style(_read_grey(name), name)
    if shape == (FIELD, FIELD):
        return digit
    from PIL import Image

    resized = Image.fromarray(digit.astype(np.float32)).resize(
        (shape[1], shape[0]), Image.Resampling.LANCZOS)
    return np.rint(np.clip(np.asarray(resized, dtype=np.float64), 0, 255)).astype(np.uint8)


def _load_npy(name, shape=(FIELD, FIELD)):
    from jitnet.io.atomic import open_regular
    from jitnet.io.npy import read_npy_header

    def refuse(problem):
        raise ImageError(f"{name}: cannot read as a .npy array ({problem})")

    file, _ = open_regular(name, ImageError)  # never a FIFO or device: reading could block
    with file:  # the header first, parsed without evaluating it: np.load allocates any shape
        header, _ = read_npy_header(file, refuse)
        if header.shape not in (shape, (shape[0] * shape[1],)):
            raise ImageError(f"{name}: a .npy digit must have shape {shape} or "
                             f"({shape[0] * shape[1]},), got {header.shape}")
        file.seek(0)
        try:
            array = np.load(file, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            refuse(_reason(exc))
    if not isinstance(array, np.ndarray) or array.shape not in (shape, (shape[0] * shape[1],)):
        raise ImageError(f"{name}: a .npy digit must have shape {shape} or "
                         f"({shape[0] * shape[1]},), got {getattr(array, 'shape', None)}")
    if array.dtype.kind not in "uif" or not np.all(np.isfinite(array)):
        raise ImageError(f"{name}: a .npy digit must hold finite numbers, got {array.dtype}")
    if array.dtype.kind == "f" and array.max(initial=0) <= 1:
        array = array * 255.0
    if array.min(initial=0) < 0 or array.max(initial=0) > 255:
        raise ImageError(f"{name}: .npy pixel values must lie in 0-255 (or 0-1 for floats)")
    return np.rint(array).astype(np.uint8).reshape(shape)


def _reason(exc):
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


def _read_grey(name):
    """The file's pixels as a float (rows, cols) array of 0-255, transparency on white."""
    Image = _pillow()
    try:
        with warnings.catch_warnings():
            # Pillow warns of damaged data (and of images above MAX_IMAGE_PIXELS, refusing only
            # at twice that) and reads on regardless: refuse at once instead.
            warnings.simplefilter("error")
            image = Image.open(name)
        with image:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # unreadable EXIF: leave the image unrotated
                orientation = image.getexif().get(_ORIENTATION)  # before load closes the file
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                image.load()
            if orientation in _UPRIGHT:  # a camera's photo: turn it as the camera was held
                image = image.transpose(getattr(Image.Transpose, _UPRIGHT[orientation]))
            return _to_grey(image, Image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(
            f"{name}: image too large (over Pillow's limit of {Image.MAX_IMAGE_PIXELS:,} "
            "pixels; a possible decompression bomb)"
        ) from None
    except FileNotFoundError:
        raise ImageError(f"{name}: no such file") from None
    except Image.UnidentifiedImageError:
        raise ImageError(f"{name}: not an image file Pillow can read") from None
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError, Warning) as exc:
        # Truncated or corrupt data, unsupported modes, a directory, no permission.
        raise ImageError(f"{name}: cannot read the image ({_reason(exc)})") from None


def _to_grey(image, Image):
    mode = image.mode
    if mode in ("I", "F") or mode.startswith("I;"):
        grey = np.asarray(image, dtype=np.float64)
        if mode.startswith("I;16") or (mode == "I" and grey.max(initial=0) > 255):
            grey = grey / 257.0  # 16-bit samples
        elif mode == "F" and grey.max(initial=0) <= 1:
            grey = grey * 255.0  # fractions
        if not np.all(np.isfinite(grey)):
            raise ValueError("pixel values are not finite")
        return np.clip(grey, 0, 255)
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    if not has_alpha:
        return np.asarray(image.convert("L"), dtype=np.float64)
    rgba = image.convert("RGBA")
    grey = np.asarray(rgba.convert("L"), dtype=np.float64)
    alpha = np.asarray(rgba.getchannel("A"), dtype=np.float64) / 255.0
    on_white = grey * alpha + 255.0 * (1 - alpha)
    if np.ptp(on_white) < _MIN_CONTRAST <= np.ptp(alpha * 255):
        # Light ink on a transparent background vanishes on white: the opacity is the ink.
        return 255.0 * alpha
    return on_white


def _border(grey):
    width = max(1, min(grey.shape) // 20)
    top, bottom = grey[:width].ravel(), grey[-width:].ravel()
    left, right = grey[:, :width].ravel(), grey[:, -width:].ravel()
    return np.concatenate([top, bottom, left, right])


def _mnist_style(grey, name):
    """MNIST's recipe on a float (rows, cols) image of 0-255: see :func:`load_digit`."""
    border = _border(grey)
    # The ink is whichever extreme lies farther from the background (the border's median): a
    # background nearer the lightest pixel than the darkest has dark ink, so invert.
    background = np.median(border)
    if grey.max() - background < background - grey.min():
        grey, border = 255.0 - grey, 255.0 - border
    # Levels: the background and its noise go to 0, the strongest ink to 255, so that JPEG
    # noise and paper texture do not count as ink. Median and median absolute deviation of
    # the border are robust to ink that touches the border (up to half of it).
    background = np.median(border)
    noise = 1.4826 * np.median(np.abs(border - background))  # a standard deviation if normal
    floor = background + 3 * noise
    peak = grey.max()
    if peak - floor < _MIN_CONTRAST:
        raise ImageError(f"{name}: no digit found (the image is blank or a single colour)")
    ink = np.clip((grey - floor) * (255.0 / (peak - floor)), 0, 255)

    rows = np.flatnonzero((ink > _BBOX_LEVEL * 255).any(axis=1))
    cols = np.flatnonzero((ink > _BBOX_LEVEL * 255).any(axis=0))
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    scale = BOX / max(bottom - top, right - left)
    # Keep a margin around the box so the strokes' faint edges survive the crop.
    margin = int(math.ceil(1.5 / scale))
    crop_top, crop_left = max(top - margin, 0), max(left - margin, 0)
    crop = ink[crop_top:min(bottom + margin, ink.shape[0]), crop_left:min(right + margin,
                                                                        ink.shape[1])]
    box = _resize(crop, scale)
    box *= 255.0 / box.max()  # thin strokes shrunk to grey get MNIST's full ink back
    # Where the 20x20 box lies inside the resized crop, in its pixels: (first, last) per axis.
    core = [(math.floor((a - c) * f), math.ceil((b - c) * f))
            for a, b, c, f in ((top, bottom, crop_top, box.shape[0] / crop.shape[0]),
                               (left, right, crop_left, box.shape[1] / crop.shape[1]))]
    return _centre(box, core)


def _resize(ink, scale):
    """``ink`` scaled by ``scale`` with Pillow's LANCZOS filter (anti-aliased both ways)."""
    from PIL import Image

    rows, cols = ink.shape
    size = (max(1, round(cols * scale)), max(1, round(rows * scale)))
    resized = Image.fromarray(ink.astype(np.float32)).resize(
        size, Image.Resampling.LANCZOS
    )
    return np.clip(np.asarray(resized, dtype=np.float64), 0, 255)


def _centre(box, core):
    """``box`` pasted into the 28x28 field with its centre of mass on (14, 14), rounded to whole
    pixels, unless that would push the digit's ``core`` (the 20x20 box, per axis its first and
    last pixel) out of the field; only the faint margin around it may be cut."""
    total = box.sum()
    ys, xs = np.indices(box.shape)
    com = ((ys * box).sum() / total, (xs * box).sum() / total)
    field = np.zeros((FIELD, FIELD))
    starts = []
    for c, (first, last) in zip(com, core):
        start = int(math.floor(CENTRE - c + 0.5))
        starts.append(min(max(start, -first), FIELD - last))  # whole-pixel shifts, as MNIST's
    src = tuple(slice(max(0, -s), min(n, FIELD - s)) for s, n in zip(starts, box.shape))
    dst = tuple(slice(max(0, s), min(s + n, FIELD)) for s, n in zip(starts, box.shape))
    field[dst] = box[src]
    return np.rint(field).astype(np.uint8)


def save_digit(image, path):
    """Write a digit as a grayscale PNG, white ink on black: what the network is shown.

    Parameters
    ----------
    image : ndarray of uint8, (rows, cols)
        E.g. the result of :func:`load_digit`.
    path : str or os.PathLike
        Written atomically.
    """
    from jitnet.io.atomic import atomic_write

    Image = _pillow()
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 2:
        raise ValueError(f"a digit must be a 2-D uint8 array, got {image.dtype} {image.shape}")
    picture = Image.fromarray(image)
    atomic_write(path, lambda f: picture.save(f, format="PNG"))


def probabilities(outputs, loss="squared"):
    """Network outputs as scores that sum to 1 over the classes.

    Softmax outputs (``loss="cross_entropy"``) already are a distribution and come back as
    they are (renormalised against rounding). Sigmoid outputs of the tutorial's squared-error
    network (``loss="squared"``) are each in (0, 1) and need not sum to 1: negative values
    (possible with tanh) are set to 0 and each row is divided by its sum (a row of zeros becomes
    uniform). These are scores for ranking and display, **not calibrated probabilities**: a
    squared-error network's "93%" does not mean it is right 93% of the time.

    Parameters
    ----------
    outputs : array_like, (n_classes,) or (N, n_classes)
    loss : {"squared", "cross_entropy"}

    Returns
    -------
    ndarray of float64, same shape as ``outputs``
    """
    if loss not in ("squared", "cross_entropy"):
        raise ValueError(f"loss must be 'squared' or 'cross_entropy', got {loss!r}")
    scores = np.asarray(outputs, dtype=np.float64)
    if scores.ndim not in (1, 2) or scores.shape[-1] == 0:
        raise ValueError(f"outputs must have shape (n_classes,) or (N, n_classes), "
                         f"got {scores.shape}")
    if not np.all(np.isfinite(scores)):
        raise ValueError("outputs must be finite")
    scores = np.clip(scores, 0, None)
    total = scores.sum(axis=-1, keepdims=True)
    uniform = np.full_like(scores, 1.0 / scores.shape[-1])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, scores / np.where(total > 0, total, 1), uniform)
