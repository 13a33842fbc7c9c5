"""Preprocessing of digit images before a network sees them: deslanting and width
normalisation, as Meier, Cireșan, Gambardella and Schmidhuber (ICDAR 2011) preprocessed the
members of their committee so that the members err on different digits.

* ``deslant``: the image's slant, ``cov(x, y) / var(y)`` of its ink (pixel values as weights,
  ``y`` down the rows, ``x`` along the columns), is removed by a horizontal shear about the ink's
  centre row: output pixel ``(y, x)`` reads the input at ``(y, x + slant * (y - cy))``.
* ``width:W``: the columns holding ink (a pixel above a tenth of the image's brightest) span
  ``w`` columns; the image is stretched horizontally by ``W / w`` about the ink's centre column,
  so that every digit's ink spans about ``W`` columns (a ``1`` becomes a bar; the rows stay).
  Bilinear reading softens the edges: measured at half the brightest the ink spans ``W`` ± 1
  columns, at the tenth it may reach a column or two further.

Both read the input by bilinear interpolation, zero outside the image, and run one after the
other (``deslant+width:16``: deslant first). Images keep their type: uint8 pixels come back as
uint8 (rounded half to even, clipped to 0-255), floats as float64 of the same scale, so a
network's input scale applies unchanged. A blank image (no ink) is returned as it is.

A :class:`Preprocessing` travels with a network (:attr:`jitnet.Network.preprocessing`), in its
model file, so that a saved model takes raw digits and preprocesses them as it was trained.
Shapes: ``X: (N, rows * cols)``, row-major images.
"""

import math
import re
from typing import NamedTuple

import numpy as np

from jitnet.engine.jit import jit_ordered as _jit

#: A column holds ink when one of its pixels is above this share of the image's brightest.
INK = 0.1
#: Allowed target widths of ``width:W``, in pixels.
MIN_WIDTH, MAX_WIDTH = 1, 4096
_SPEC = re.compile(r"^(?:(deslant)|width:([0-9]{1,4}))$")


class Preprocessing(NamedTuple):
    """What is done to every image, and the images' shape.

    Attributes
    ----------
    deslant : bool
        Remove the slant (first).
    width : int or None
        Stretch every digit to this many columns (after deslanting); None leaves widths.
    image_shape : (int, int)
        (rows, cols) of the images.
    """

    deslant: bool
    width: object
    image_shape: tuple

    @classmethod
    def parse(cls, text, image_shape):
        """A Preprocessing from its text (``deslant``, ``width:16``, ``deslant+width:16``;
        ``none`` or None gives None); ValueError, one line, for anything else."""
        if text is None or str(text).strip().lower() == "none":
            return None
        deslant, width = False, None
        steps = str(text).strip().lower().split("+")
        for position, step in enumerate(steps):
            match = _SPEC.match(step.strip())
            if match is None:
                raise ValueError(f"preprocessing {text!r}: each step must be 'deslant' or "
                                 f"'width:W' (W in pixels), joined by '+', or 'none'")
            if match.group(1):
                if deslant or position:
                    raise ValueError(f"preprocessing {text!r}: 'deslant' comes once, first")
                deslant = True
            else:
                if width is not None:
                    raise ValueError(f"preprocessing {text!r}: 'width:W' comes once")
                width = int(match.group(2))
                if not MIN_WIDTH <= width <= MAX_WIDTH:
                    raise ValueError(f"preprocessing {text!r}: the width must be "
                                     f"{MIN_WIDTH} to {MAX_WIDTH} pixels")
        return cls(deslant, width, _check_shape(image_shape))

    def __str__(self):
        steps = (["deslant"] if self.deslant else []) + \
            ([f"width:{self.width}"] if self.width is not None else [])
        return "+".join(steps)

    def apply(self, X):
        """The preprocessed images: a new (N, rows * cols) array, uint8 for uint8 ``X`` and
        float64 otherwise. ``X`` must hold finite numbers."""
        X = np.asarray(X)
        rows, cols = self.image_shape
        if X.ndim != 2 or X.shape[1] != rows * cols:
            raise ValueError(f"preprocessing {self} takes images of {rows}x{cols} pixels as "
                             f"rows of {rows * cols}, got shape {X.shape}")
        images = np.ascontiguousarray(X, dtype=np.float64)
        if not np.isfinite(images).all():
            raise ValueError(f"preprocessing {self}: the images hold NaN or infinite values")
        out = np.empty_like(images)
        _preprocess(images, out, rows, cols, self.deslant, self.width or 0, INK)
        if X.dtype == np.uint8:
            return np.clip(np.rint(out), 0, 255).astype(np.uint8)
        return out


def stored_preprocessing(text, shape):
    """The Preprocessing a model file stores as its text and (rows, cols); ValueError."""
    value = Preprocessing.parse(text, tuple(int(n) for n in np.asarray(shape)))
    if value is None:
        raise ValueError("preprocessing 'none' is stored as no entry")
    return value


def run_preprocessing(spec, image_shape, n_inputs):
    """The Preprocessing of a run configured with ``preprocess=spec`` on images of
    ``image_shape`` (None: square images of ``n_inputs`` pixels); None for ``none``."""
    if spec == "none":
        return None
    side = math.isqrt(n_inputs)
    if not image_shape and side * side != n_inputs:
        raise ValueError(f"the images' shape is not known for {n_inputs} inputs (not a square)")
    return Preprocessing.parse(spec, image_shape or (side, side))


def refuse_export(nets):
    """ValueError when one of ``nets`` preprocesses images: ONNX graphs take the network's
    inputs, and jitnet has no ONNX form of deslanting or width normalisation."""
    for net in nets:
        if net.preprocessing is not None:
            raise ValueError(f"cannot export a network that preprocesses its images "
                             f"({net.preprocessing}) to ONNX: the graph would need "
                             f"the preprocessing, which jitnet does not write as ONNX operators")


def _check_shape(image_shape):
    try:
        rows, cols = (int(side) for side in image_shape)
    except (TypeError, ValueError):
        raise ValueError(f"preprocessing needs the images' (rows, cols), got "
                         f"{image_shape!r}") from None
    if rows < 1 or cols < 1:
        raise ValueError(f"preprocessing needs images of at least 1x1 pixels, got "
                         f"{rows}x{cols}")
    return (rows, cols)


def check_preprocessing(value, n_inputs):
    """None, or a :class:`Preprocessing` for images of ``n_inputs`` pixels; ValueError
    otherwise."""
    if value is None:
        return None
    if not isinstance(value, Preprocessing):
        raise ValueError(f"preprocessing must be a jitnet.Preprocessing or None, got "
                         f"{type(value).__name__}")
    checked = Preprocessing.parse(str(value) or "none", value.image_shape)
    if checked is None:
        raise ValueError("preprocessing does nothing (neither deslant nor a width): use None")
    rows, cols = checked.image_shape
    if rows * cols != n_inputs:
        raise ValueError(f"preprocessing is for {rows}x{cols} images ({rows * cols} pixels); "
                         f"the network has {n_inputs} inputs")
    return checked


# -- kernels ----------------------------------------------------------------------------------


@_jit
def _bilinear(image, rows, cols, y, x):
    """The image (rows * cols,) at the real position (y, x); zero outside."""
    r0 = int(np.floor(y))
    c0 = int(np.floor(x))
    fy = y - r0
    fx = x - c0
    total = 0.0
    for dr in range(2):
        r = r0 + dr
        if r < 0 or r >= rows:
            continue
        wy = fy if dr else 1.0 - fy
        for dc in range(2):
            c = c0 + dc
            if c < 0 or c >= cols:
                continue
            wx = fx if dc else 1.0 - fx
            total += wy * wx * image[r * cols + c]
    return total


@_jit
def _deslant_one(image, out, rows, cols):
    mass = 0.0
    sy = 0.0
    sx = 0.0
    for r in range(rows):
        for c in range(cols):
            p = image[r * cols + c]
            mass += p
            sy += p * r
            sx += p * c
    if mass <= 0.0:
        out[:] = image
        return
    cy = sy / mass
    cx = sx / mass
    vyy = 0.0
    vxy = 0.0
    for r in range(rows):
        for c in range(cols):
            p = image[r * cols + c]
            vyy += p * (r - cy) * (r - cy)
            vxy += p * (r - cy) * (c - cx)
    slant = vxy / vyy if vyy > 0.0 else 0.0
    for r in range(rows):
        shift = slant * (r - cy)
        for c in range(cols):
            out[r * cols + c] = _bilinear(image, rows, cols, float(r), c + shift)


@_jit
def _width_one(image, out, rows, cols, width, ink):
    brightest = 0.0
    for i in range(rows * cols):
        if image[i] > brightest:
            brightest = image[i]
    if brightest <= 0.0:
        out[:] = image
        return
    left = cols
    right = -1
    mass = 0.0
    sx = 0.0
    for r in range(rows):
        for c in range(cols):
            p = image[r * cols + c]
            if p > ink * brightest:
                left = min(left, c)
                right = max(right, c)
            if p > 0.0:
                mass += p
                sx += p * c
    cx = sx / mass
    stretch = width / (right - left + 1.0)
    for r in range(rows):
        for c in range(cols):
            out[r * cols + c] = _bilinear(image, rows, cols, float(r), cx + (c - cx) / stretch)


@_jit
def _preprocess(images, out, rows, cols, deslant, width, ink):
    scratch = np.empty(rows * cols)
    for n in range(images.shape[0]):
        image = images[n]
        if deslant and width:
            _deslant_one(image, scratch, rows, cols)
            _width_one(scratch, out[n], rows, cols, width, ink)
        elif deslant:
            _deslant_one(image, out[n], rows, cols)
        else:
            _width_one(image, out[n], rows, cols, width, ink)
