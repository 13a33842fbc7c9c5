"""Random distortions of training images, drawn afresh each time a sample is seen.

Per-sample SGD on a plain MLP reaches its best MNIST results only when the training images are
distorted anew on every visit: Simard et al. (2003) with elastic distortions (a random
displacement field, uniform(-1, 1) per pixel, smoothed by a Gaussian of width sigma and scaled
by alpha; they used sigma = 4, alpha = 34), Cireșan et al. (2010) with elastic distortions plus
random rotation and horizontal/vertical scaling. jitnet distorts inside the compiled epoch, one
sample at a time, into a small float buffer: the data set is never copied.

- :class:`Distortion` says how strong each part is (validated once, here).
- :class:`DistortionPlan` is what a run builds once from a distortion, the image shape and a
  seed: the bank of smoothed displacement fields, and :meth:`DistortionPlan.draw_epoch`, which
  draws every random number of an epoch from a NumPy generator as one array.
- :func:`distort` returns distorted copies, for inspection and pictures.

The elastic part combines two fields of the bank per sample, ``cos(phi) f_i + sin(phi) f_j``
with a random angle phi: the fields are independent with zero mean, so the combination has
exactly the variance and spatial correlation of one smoothed field, at the cost of a weighted
sum instead of a Gaussian smoothing per sample (see ``bench/distort.py`` for the measurement).
The compiled code is in :mod:`jitnet.engine.distort_kernels`.
"""

import math
import numbers
from dataclasses import dataclass, fields

import numpy as np

from jitnet.engine import distort_kernels as dk

__all__ = ["Distortion", "DistortionPlan", "distort"]

BANK_SIZE = 500
GAUSSIAN_RADIUS = 4.0  # the smoothing kernel is cut at 4 sigma (weights below 3.4e-4 of the peak)
_BANK_CHUNK = 32  # fields smoothed at a time, which bounds the memory the noise takes

# Upper limits of each parameter: (limit, whether the limit itself is allowed, what it means).
_LIMITS = {
    "elastic_sigma": (math.inf, False, "a width in pixels"),
    "elastic_alpha": (math.inf, False, "a displacement scale in pixels"),
    "rotate": (180.0, True, "a ± range in degrees"),
    "scale_x": (1.0, False, "a ± fraction of the width"),
    "scale_y": (1.0, False, "a ± fraction of the height"),
    "shear": (90.0, False, "a ± range in degrees"),
    "translate": (math.inf, False, "a ± range in pixels"),
}


@dataclass(frozen=True)
class Distortion:
    """How strongly to distort each training image; all zero (the default) is the identity.

    Every parameter is a non-negative range; each sample draws its own values uniformly within.

    Parameters
    ----------
    elastic_sigma : float
        Width in pixels of the Gaussian that smooths the random displacement field (Simard et
        al. 2003: 4). Required (> 0) when ``elastic_alpha > 0``.
    elastic_alpha : float
        Scale of the displacement field in pixels (Simard et al.: 34; with sigma = 4 a pixel
        moves by about 1.4 pixels r.m.s. along each axis). 0 turns elastic distortion off.
    rotate : float
        Rotation by a random angle in [-rotate, rotate] degrees, counter-clockwise on screen,
        about the image centre. At most 180.
    scale_x, scale_y : float
        Width and height multiplied by 1 + s, s in [-scale_x, scale_x] (resp. y), about the
        centre. In [0, 1).
    shear : float
        Horizontal shear by a random angle in [-shear, shear] degrees (x += tan(angle) * y,
        y pointing down from the centre). In [0, 90).
    translate : float
        Shift by a random number of pixels in [-translate, translate], along each axis.

    Raises
    ------
    ValueError
        A parameter that is not a finite number in its range, one message per problem.

    Notes
    -----
    The affine part maps image content by rotation @ shear @ scaling about the centre, then the
    shift; the elastic displacement is added at each output pixel. Cireșan et al. (2010) combined
    elastic distortion (sigma 5-6, alpha 36-38) with rotation and horizontal/vertical scaling.
    """

    elastic_sigma: float = 0.0
    elastic_alpha: float = 0.0
    rotate: float = 0.0
    scale_x: float = 0.0
    scale_y: float = 0.0
    shear: float = 0.0
    translate: float = 0.0

    def __post_init__(self):
        for field in fields(self):
            name = field.name
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ValueError(f"Distortion: {name} must be a number, got {value!r}")
            value = float(value)
            limit, inclusive, meaning = _LIMITS[name]
            if not math.isfinite(value):
                raise ValueError(f"Distortion: {name} must be finite, got {value}")
            if value < 0 or value > limit or (value == limit and not inclusive):
                if limit == math.inf:
                    allowed = ">= 0"
                else:
                    allowed = f"in [0, {limit:g}" + ("]" if inclusive else ")")
                raise ValueError(f"Distortion: {name} must be {allowed} ({meaning}), got {value:g}")
            object.__setattr__(self, name, value)
        if self.elastic_alpha > 0 and self.elastic_sigma == 0:
            raise ValueError(
                "Distortion: elastic_alpha > 0 needs elastic_sigma > 0 "
                "(the width of the Gaussian that smooths the displacement field)"
            )

    def __repr__(self):
        # Only the parts that are on: Distortion(elastic_sigma=4.0, elastic_alpha=34.0)
        parts = [f"{f.name}={getattr(self, f.name)!r}" for f in fields(self)
                 if getattr(self, f.name)]
        return f"Distortion({', '.join(parts)})"

    @property
    def elastic(self):
        """Whether the elastic part is on (``elastic_alpha > 0``)."""
        return self.elastic_alpha > 0

    @property
    def is_identity(self):
        """Whether every image comes out unchanged."""
        return not self.elastic and not any(
            getattr(self, name) for name in ("rotate", "scale_x", "scale_y", "shear", "translate")
        )


def _check_image_shape(image_shape):
    """(rows, cols) as two positive ints, or a ValueError."""
    try:
        rows, cols = (int(size) for size in image_shape)
        valid = rows >= 1 and cols >= 1 and [rows, cols] == list(image_shape)
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(f"image_shape must be two positive ints (rows, cols), got {image_shape!r}")
    return rows, cols


def _generator(seed):
    """``seed`` itself when it is a NumPy Generator, else ``np.random.default_rng(seed)``."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def _gaussian(sigma):
    """Normalised 1-D Gaussian weights of width sigma, cut at GAUSSIAN_RADIUS sigma."""
    radius = int(math.ceil(GAUSSIAN_RADIUS * sigma))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    return taps / taps.sum()


def _field_bank(rows, cols, sigma, size, rng):
    """``size`` displacement fields of Simard et al., (size, 2, rows*cols) float32.

    Each component is uniform(-1, 1) noise smoothed by a normalised Gaussian of width sigma. The
    noise covers the image plus the kernel's radius on every side, so that the smoothed field is
    the same random process at the border as in the middle (no zero padding shrinks it there).
    """
    taps = _gaussian(sigma)
    radius = taps.size // 2
    bank = np.empty((size, 2, rows * cols), np.float32)
    for start in range(0, size, _BANK_CHUNK):
        count = min(_BANK_CHUNK, size - start)
        noise = rng.uniform(-1.0, 1.0, (count, 2, rows + 2 * radius, cols + 2 * radius))
        along_x = sum(w * noise[..., k : k + cols] for k, w in enumerate(taps))
        smooth = sum(w * along_x[..., k : k + rows, :] for k, w in enumerate(taps))
        bank[start : start + count] = smooth.reshape(count, 2, rows * cols)
    return bank


def _affine_draws(angle, scale_x, scale_y, shear, shift_x, shift_y):
    """Inverse affine matrices and offsets, (n, 6), of per-sample transforms (arrays of (n,)).

    The content map is F = rotation(angle) @ shear @ diag(1 + scale_x, 1 + scale_y) about the
    centre, then the shift; angles in degrees, y pointing down, positive angles counter-clockwise
    on screen. The kernel needs the inverse: source = A @ (dest - centre) - A @ shift + centre.
    """
    theta = np.deg2rad(angle)
    cos, sin, tan = np.cos(theta), np.sin(theta), np.tan(np.deg2rad(shear))
    out = np.empty((np.shape(angle)[0], 6))
    # A = diag(1/(1+sx), 1/(1+sy)) @ [[1, -tan], [0, 1]] @ [[cos, -sin], [sin, cos]]
    out[:, 0] = (cos - tan * sin) / (1.0 + scale_x)
    out[:, 1] = (-sin - tan * cos) / (1.0 + scale_x)
    out[:, 2] = sin / (1.0 + scale_y)
    out[:, 3] = cos / (1.0 + scale_y)
    out[:, 4] = -(out[:, 0] * shift_x + out[:, 1] * shift_y)
    out[:, 5] = -(out[:, 2] * shift_x + out[:, 3] * shift_y)
    return out


class DistortionPlan:
    """Everything a run needs to distort its images, built once from a seed.

    Parameters
    ----------
    distortion : Distortion
    image_shape : (int, int)
        ``(rows, cols)`` of one image; images are flattened row-major, as in :class:`Dataset`.
    seed : int, None or numpy.random.Generator
        Source of the field bank (an int makes it reproducible; a Generator is consumed).
    bank_size : int
        Number of smoothed displacement fields (>= 2), each ``2 * rows * cols`` float32; unused
        (and nothing allocated) when the distortion has no elastic part.

    Attributes
    ----------
    distortion : Distortion
    image_shape : (int, int)
    bank : numpy.ndarray, (K, 2, rows*cols) float32
        Smoothed uniform(-1, 1) fields, component 0 along columns and 1 along rows (K = 0 when
        the elastic part is off). The kernel scales them by ``elastic_alpha``.
    """

    def __init__(self, distortion, image_shape, seed=None, bank_size=BANK_SIZE):
        if not isinstance(distortion, Distortion):
            kind = type(distortion).__name__
            raise ValueError(f"distortion must be a jitnet.Distortion, got {kind}")
        rows, cols = _check_image_shape(image_shape)
        integral = isinstance(bank_size, numbers.Integral) and not isinstance(bank_size, bool)
        if not integral or bank_size < 2:
            raise ValueError(f"bank_size must be an integer >= 2, got {bank_size!r}")
        if distortion.elastic_sigma > max(rows, cols):
            raise ValueError(
                f"Distortion: elastic_sigma {distortion.elastic_sigma:g} is wider than the "
                f"{rows}x{cols} image (at most {max(rows, cols)}); a shift is what translate does"
            )
        self.distortion = distortion
        self.image_shape = (rows, cols)
        if distortion.elastic:
            self.bank = _field_bank(rows, cols, distortion.elastic_sigma, int(bank_size),
                                    _generator(seed))
        else:
            self.bank = np.zeros((0, 2, rows * cols), np.float32)

    def __repr__(self):
        return (f"DistortionPlan({self.distortion}, image_shape={self.image_shape}, "
                f"bank_size={self.bank.shape[0]})")

    def draw_epoch(self, rng, n_samples):
        """Every random number of one epoch: row k distorts the k-th sample visited.

        Parameters
        ----------
        rng : numpy.random.Generator
            The run's generator; it advances by the same amount for the same ``n_samples``, so
            a saved ``rng.bit_generator.state`` reproduces the epoch exactly.
        n_samples : int

        Returns
        -------
        numpy.ndarray, (n_samples, N_DRAW) float64
            Per sample: the inverse affine matrix and offset, the two bank fields and their
            weights (columns named in :mod:`jitnet.engine.distort_kernels`).
        """
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        n = int(n_samples)
        if n < 0:
            raise ValueError(f"n_samples must be >= 0, got {n_samples}")
        d = self.distortion
        angle = rng.uniform(-d.rotate, d.rotate, n)
        scale_x = rng.uniform(-d.scale_x, d.scale_x, n)
        scale_y = rng.uniform(-d.scale_y, d.scale_y, n)
        shear = rng.uniform(-d.shear, d.shear, n)
        shift = rng.uniform(-d.translate, d.translate, (2, n))
        size = max(self.bank.shape[0], 2)
        first = rng.integers(0, size, n)
        second = (first + rng.integers(1, size, n)) % size  # never the same field twice
        phase = rng.uniform(0.0, 2.0 * math.pi, n)
        draws = np.zeros((n, dk.N_DRAW))
        draws[:, dk.A00 : dk.OY + 1] = _affine_draws(angle, scale_x, scale_y, shear, *shift)
        if d.elastic:
            draws[:, dk.FIELD_I] = first
            draws[:, dk.FIELD_J] = second
            draws[:, dk.WEIGHT_I] = d.elastic_alpha * np.cos(phase)
            draws[:, dk.WEIGHT_J] = d.elastic_alpha * np.sin(phase)
        return draws

    def scratch(self):
        """The kernel's scratch buffers, allocated once per run: ``(work, index)``."""
        rows, cols = self.image_shape
        return np.zeros(dk.work_size(rows, cols)), np.zeros(rows * cols, np.int64)


def _images_and_shape(images, image_shape):
    """C-contiguous (N, rows*cols) images, (rows, cols), and whether they came as 3-D."""
    if image_shape is None and hasattr(images, "image_shape") and hasattr(images, "images"):
        images, image_shape = images.images, images.image_shape  # a jitnet Dataset
    X = np.asarray(images)
    if X.ndim == 3 and image_shape is None:
        image_shape = X.shape[1:]
    if X.ndim not in (2, 3) or image_shape is None:
        raise ValueError(
            f"images must be (N, rows, cols), or (N, rows*cols) with image_shape=(rows, cols); "
            f"got shape {X.shape} and no image shape"
        )
    rows, cols = _check_image_shape(image_shape)
    if X.shape[1:] not in ((rows, cols), (rows * cols,)):
        raise ValueError(f"images of shape {X.shape} do not hold {rows}x{cols} images")
    if X.dtype != np.uint8 and X.dtype.kind not in "biuf":
        raise ValueError(f"images must be numeric, got dtype {X.dtype}")
    if X.dtype not in (np.uint8, np.float32, np.float64):
        X = X.astype(np.float64)
    if X.dtype != np.uint8 and not np.isfinite(X).all():
        raise ValueError("images contain NaN or inf")
    return np.ascontiguousarray(X.reshape(len(X), rows * cols)), (rows, cols), X.ndim == 3


def distort(images, distortion, seed=None, image_shape=None, scale=None):
    """Distorted float copies of images, each with its own random draw.

    Parameters
    ----------
    images : array_like, (N, rows, cols) or (N, rows*cols), or a jitnet Dataset
        uint8 pixels or float values.
    distortion : Distortion
    seed : int, None or numpy.random.Generator
        Source of the field bank and of every sample's draw; the same int gives bitwise the
        same output.
    image_shape : (int, int), optional
        ``(rows, cols)``; required for flattened images unless ``images`` is a Dataset.
    scale : float, optional
        Factor applied to the values; default 1/255 for uint8 and 1 for floats (as in training).

    Returns
    -------
    numpy.ndarray of float64, the shape of ``images``
        Bilinear resampling, zero outside the image: each value is a convex combination of
        input values (times ``scale``) and zeros.
    """
    X, (rows, cols), square = _images_and_shape(images, image_shape)
    if scale is None:
        scale = 1.0 / 255.0 if X.dtype == np.uint8 else 1.0
    scale = float(scale)
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive finite number, got {scale}")
    rng = _generator(seed)
    plan = DistortionPlan(distortion, (rows, cols), rng)
    draws = plan.draw_epoch(rng, len(X))
    out = np.empty(X.shape, np.float64)
    order = np.arange(len(X), dtype=np.int64)
    dk._distort_batch(X, order, rows, cols, scale, draws, plan.bank, *plan.scratch(), out)
    return out.reshape(len(X), rows, cols) if square else out
