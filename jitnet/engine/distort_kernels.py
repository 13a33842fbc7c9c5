"""Compiled (``@njit``) image distortion: one sample per call, callable from an epoch kernel.

Shape legend (an image of ``H`` rows and ``W`` columns, flattened row-major, ``n = H * W``)::

    x: (n,)           one input image, uint8 or float, in the data set's units
    out: (n,)         the distorted image, float32 or float64, times ``scale``
    draw: (N_DRAW,)   one sample's random numbers, as laid out by the column constants below
    bank: (K, 2, n)   float32 smoothed displacement fields, component 0 along columns (x),
                      1 along rows (y); K = 0 turns the elastic part off
    work: (work_size(H, W),) float64 scratch: the image with a zero border, then the
                      fractional source coordinates
    index: (n,)       int64 scratch: where each output pixel's 2 x 2 source block starts

Each output pixel (r, c) takes its value from the source point, in pixels,

    (x_s, y_s) = centre + A @ (c - cx, r - cy) + (ox, oy)
                 + w_i * bank[i, :, q] + w_j * bank[j, :, q]

with q = r * W + c and the centre (cx, cy) = ((W - 1) / 2, (H - 1) / 2): the inverse of the
affine map composed with the elastic displacement at the output pixel. The value there is the
bilinear interpolation of the four surrounding pixels, zero outside the image, so every output is
a convex combination of input values and zeros. Kernels take only arrays and scalars, write into
the buffers they are given and allocate nothing.
"""

import math

from jitnet.engine.jit import jit as _jit

# Columns of one sample's draw: the inverse affine matrix A (row-major), the offset (ox, oy) in
# pixels, the two bank fields (indices stored as floats, exact below 2**53) and their weights.
A00, A01, A10, A11, OX, OY, FIELD_I, FIELD_J, WEIGHT_I, WEIGHT_J = range(10)
N_DRAW = 10

# The training kernels' numerics (jitnet.engine.jit): reassociation lets LLVM vectorise the
# coordinate loop; no NaN/Inf assumptions. The coordinates are sums of exactly representable
# terms whenever the transform is an identity or an integer shift, so reordering them never
# changes those results.


def work_size(H, W):
    """Length of the float64 ``work`` scratch for H x W images."""
    return (H + 3) * (W + 3) + 2 * H * W


@_jit
def _pad_image(x, H, W, padded):
    """Copy x: (H*W,) into padded: ((H+3)*(W+3),), inside a border of zeros.

    One zero row and column before the image and two after: a source point clamped to
    [-1, W] x [-1, H] then reads only zeros outside the image, with no test per pixel. The
    border is rewritten every call (a few hundred stores), so ``work`` need not start zeroed.
    """
    Wp = W + 3
    padded[:Wp] = 0.0
    padded[(H + 1) * Wp :] = 0.0
    for r in range(H):
        start = (r + 1) * Wp + 1
        padded[start - 1] = 0.0
        for c in range(W):
            padded[start + c] = x[r * W + c]
        padded[start + W] = 0.0
        padded[start + W + 1] = 0.0


@_jit
def _source_points(H, W, draw, bank, frac_x, frac_y, index):
    """Source point of every output pixel, split into its 2 x 2 block's start and fractions."""
    Wp = W + 3
    cx = (W - 1) * 0.5
    cy = (H - 1) * 0.5
    a00, a01, a10, a11 = draw[A00], draw[A01], draw[A10], draw[A11]
    elastic = bank.shape[0] > 0
    i = int(draw[FIELD_I]) if elastic else 0
    j = int(draw[FIELD_J]) if elastic else 0
    w_i = draw[WEIGHT_I]
    w_j = draw[WEIGHT_J]
    for r in range(H):
        v = r - cy
        row_x = cx + a01 * v + draw[OX]
        row_y = cy + a11 * v + draw[OY]
        base = r * W
        for c in range(W):
            u = c - cx
            frac_x[base + c] = row_x + a00 * u
            frac_y[base + c] = row_y + a10 * u
        if elastic:  # separate loop: both stay branch-free and vectorise
            for c in range(W):
                q = base + c
                frac_x[q] += w_i * bank[i, 0, q] + w_j * bank[j, 0, q]
                frac_y[q] += w_i * bank[i, 1, q] + w_j * bank[j, 1, q]
    x_max = float(W)
    y_max = float(H)
    for q in range(H * W):
        # Clamping keeps the 2 x 2 block inside the padded image; a clamped point lies on the
        # zero border with a zero fraction, so it reads exactly 0 as it would outside.
        xs = min(max(frac_x[q], -1.0), x_max)
        ys = min(max(frac_y[q], -1.0), y_max)
        x0 = math.floor(xs)
        y0 = math.floor(ys)
        frac_x[q] = xs - x0
        frac_y[q] = ys - y0
        index[q] = (y0 + 1) * Wp + x0 + 1


@_jit
def _distort_sample(x, H, W, scale, draw, bank, work, index, out):
    """Distort one image x: (H*W,) into out: (H*W,), times ``scale``; allocates nothing.

    Bilinear resampling at the source points of ``draw`` (see the module legend), zero outside.
    The gather is a loop of its own because it cannot vectorise and the rest can.
    """
    n = H * W
    Wp = W + 3
    n_padded = (H + 3) * Wp
    padded = work[:n_padded]
    frac_x = work[n_padded : n_padded + n]
    frac_y = work[n_padded + n : n_padded + 2 * n]
    _pad_image(x, H, W, padded)
    _source_points(H, W, draw, bank, frac_x, frac_y, index)
    for q in range(n):
        k = index[q]
        fx = frac_x[q]
        top = padded[k] + fx * (padded[k + 1] - padded[k])
        bottom = padded[k + Wp] + fx * (padded[k + Wp + 1] - padded[k + Wp])
        out[q] = scale * (top + frac_y[q] * (bottom - top))


@_jit
def _distort_batch(X, order, H, W, scale, draws, bank, work, index, out):
    """out[k] = X[order[k]] distorted with draws[k], for every k: out (M, H*W)."""
    for k in range(order.shape[0]):
        _distort_sample(X[order[k]], H, W, scale, draws[k], bank, work, index, out[k])
