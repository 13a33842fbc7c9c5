"""How ``predict`` shows a digit and what the network makes of it: the digit as text art, its
label, the prediction, the outputs and the likeliest classes with their scores."""

import math

import numpy as np

TEXT_ART_RAMP = " .:-=+*#%@"
SCORES = "scores: the network's outputs divided by their sum, not calibrated probabilities"


def text_art(image, shape=None, ramp=TEXT_ART_RAMP):
    """An image as text: a line per pixel row, two ``ramp`` characters per pixel (dark to bright).

    Parameters
    ----------
    image : ndarray of uint8, (rows, cols) or (rows*cols,)
    shape : (int, int), optional
        Needed for a flat image that is not square.
    ramp : str
        Characters from background (0) to ink (255).

    Returns
    -------
    str
        ``rows`` lines of at most ``2*cols`` characters (trailing blanks removed).
    """
    image = np.asarray(image)
    if shape is None:
        if image.ndim == 2:
            shape = image.shape
        else:
            side = math.isqrt(image.size)
            if side * side != image.size:
                raise ValueError(f"give the shape of a flat image of {image.size} pixels")
            shape = (side, side)
    if not ramp:
        raise ValueError("ramp must hold at least one character")
    levels = (np.clip(image.astype(np.int64), 0, 255).reshape(shape) * len(ramp)) // 256
    return "\n".join("".join(ramp[v] * 2 for v in row).rstrip() for row in levels)


def _name(k, names):
    return str(k) if names is None else names[k]


def index_block(name, image, shape, label, outputs, names=None):
    """The --index output: the image (or, for features, its values), its true label, the
    prediction and all outputs, classes by ``names`` when the model has them."""
    predicted = int(outputs.argmax())
    if shape is None:
        values = ", ".join(f"{float(v):g}" for v in image[:12]) + (", ..." if len(image) > 12
                                                                    else "")
        lines = [f"{name} ({len(image)} features)", f"features    {values}"]
    else:
        lines = [f"{name} ({shape[0]}x{shape[1]})", text_art(image, shape)]
    lines += [f"true label  {_name(label, names)}",
              f"predicted   {_name(predicted, names)}  "
              f"({'correct' if predicted == label else 'wrong'})", "outputs"]
    width = max(len(_name(k, names)) for k in range(len(outputs)))
    lines += [f"  {_name(k, names):>{width}}  {float(y):.4f}{'  <' if k == predicted else ''}"
              for k, y in enumerate(outputs)]
    return "\n".join(lines)


def file_block(name, image, outputs, scores, top, names=None):
    """An image file's output: the digit as the network sees it and the likeliest classes."""
    rows, cols = image.shape
    lines = [f"{name}  ({rows}x{cols} after preprocessing, as the network sees it)",
             text_art(image), f"predicted   {_name(int(outputs.argmax()), names)}",
             f"top {len(top)} ({SCORES})"]
    lines += [f"  {_name(k, names)}  {100 * scores[k]:5.1f}%   output {float(outputs[k]):.4f}"
              for k in top]
    return "\n".join(lines)
