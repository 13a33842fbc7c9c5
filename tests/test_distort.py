"""The compiled distortion against known transforms and a plain NumPy reference."""

import math
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jitnet
from jitnet.engine import distort_kernels as dk
from jitnet.engine.distortion import Distortion, DistortionPlan, _affine_draws, _gaussian, distort

TOL = 1e-12  # float64 rounding of coordinates and interpolation weights
ELASTIC = Distortion(elastic_sigma=2.0, elastic_alpha=8.0)
EVERYTHING = Distortion(elastic_sigma=2.0, elastic_alpha=8.0, rotate=20, scale_x=0.2,
                        scale_y=0.1, shear=10, translate=1.5)


def make_draw(angle=0.0, scale_x=0.0, scale_y=0.0, shear=0.0, shift=(0.0, 0.0)):
    """One draw row of an affine transform with the given values (no elastic part)."""
    draw = np.zeros((1, dk.N_DRAW))
    draw[:, : dk.OY + 1] = _affine_draws(np.array([float(angle)]), scale_x, scale_y, shear,
                                         shift[0], shift[1])
    return draw


def run_kernel(images, draws, bank=None, scale=1.0, out_dtype=np.float64):
    """The compiled kernel on (N, rows, cols) images with the given draws: (N, rows, cols)."""
    n, rows, cols = images.shape
    if bank is None:
        bank = np.zeros((0, 2, rows * cols), np.float32)
    X = np.ascontiguousarray(images.reshape(n, rows * cols))
    out = np.full((n, rows * cols), np.nan, out_dtype)
    work = np.full(dk.work_size(rows, cols), np.nan)  # garbage scratch must not matter
    index = np.zeros(rows * cols, np.int64)
    dk._distort_batch(X, np.arange(n, dtype=np.int64), rows, cols, scale, draws, bank, work,
                      index, out)
    return out.reshape(n, rows, cols)


def ref_distort(image, draw, bank):
    """The same resampling written plainly: source points, then bilinear with bounds checks."""
    rows, cols = image.shape
    cx, cy = (cols - 1) / 2, (rows - 1) / 2
    r, c = np.mgrid[0:rows, 0:cols].astype(np.float64)
    xs = cx + draw[dk.A00] * (c - cx) + draw[dk.A01] * (r - cy) + draw[dk.OX]
    ys = cy + draw[dk.A10] * (c - cx) + draw[dk.A11] * (r - cy) + draw[dk.OY]
    if bank.shape[0]:
        for field, weight in ((dk.FIELD_I, dk.WEIGHT_I), (dk.FIELD_J, dk.WEIGHT_J)):
            f = bank[int(draw[field])].astype(np.float64).reshape(2, rows, cols)
            xs = xs + draw[weight] * f[0]
            ys = ys + draw[weight] * f[1]

    def pixel(y, x):
        inside = (y >= 0) & (y < rows) & (x >= 0) & (x < cols)
        return np.where(inside, image[np.clip(y, 0, rows - 1), np.clip(x, 0, cols - 1)], 0.0)

    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    fx, fy = xs - x0, ys - y0
    top = (1 - fx) * pixel(y0, x0) + fx * pixel(y0, x0 + 1)
    bottom = (1 - fx) * pixel(y0 + 1, x0) + fx * pixel(y0 + 1, x0 + 1)
    return (1 - fy) * top + fy * bottom


# -- identity and known transforms -----------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
@pytest.mark.parametrize("shape", [(28, 28), (5, 9), (1, 1), (7, 1)])
def test_all_zero_distortion_is_exactly_the_input_times_scale(dtype, shape):
    rng = np.random.default_rng(1)
    images = (rng.integers(0, 256, (6,) + shape)).astype(dtype)
    scale = 1 / 255 if dtype == np.uint8 else 0.37
    expected = images.astype(np.float64) * scale  # the kernel multiplies in float64
    out = distort(images, Distortion(), seed=3, scale=scale)
    assert np.array_equal(out, expected)
    # float32 output, as the float32 engine takes it: the float64 product rounded once
    draws = DistortionPlan(Distortion(), shape).draw_epoch(rng, 6)
    out32 = run_kernel(images, draws, scale=scale, out_dtype=np.float32)
    assert np.array_equal(out32, expected.astype(np.float32))


def test_flattened_images_and_a_dataset_give_the_same_result():
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (4, 6, 5), dtype=np.uint8)
    square = distort(images, EVERYTHING, seed=7)
    flat = distort(images.reshape(4, 30), EVERYTHING, seed=7, image_shape=(6, 5))
    data = jitnet.Dataset(images, np.zeros(4, np.uint8), (6, 5), 10)
    assert square.shape == (4, 6, 5) and flat.shape == (4, 30)
    assert np.array_equal(square.reshape(4, 30), flat)
    assert np.array_equal(distort(data, EVERYTHING, seed=7), flat)


@pytest.mark.parametrize("angle, turns", [(90, 1), (-90, -1), (180, 2)])
def test_rotation_by_right_angles_permutes_pixels(angle, turns):
    image = np.arange(36.0).reshape(1, 6, 6) + 1
    out = run_kernel(image, make_draw(angle=angle))
    # positive angles turn the content counter-clockwise on screen, as np.rot90 does
    assert np.allclose(out[0], np.rot90(image[0], turns), rtol=0, atol=TOL)
    if turns != 2:
        assert not np.allclose(out[0], np.rot90(image[0], -turns), rtol=0, atol=TOL)


def test_scaling_about_the_centre_on_a_linear_ramp():
    # Bilinear interpolation reproduces a linear image exactly, so the output is the source
    # coordinate itself wherever that lies inside the image.
    rows, cols = 9, 11
    cx, cy = (cols - 1) / 2, (rows - 1) / 2
    ramp_x = np.tile(np.arange(cols, dtype=np.float64), (rows, 1))
    ramp_y = np.tile(np.arange(rows, dtype=np.float64)[:, None], (1, cols))
    draws = np.vstack([make_draw(scale_x=0.6), make_draw(scale_y=-0.2)])
    out = run_kernel(np.stack([ramp_x, ramp_y]), draws)
    c, r = np.meshgrid(np.arange(cols), np.arange(rows))
    src_x = cx + (c - cx) / 1.6
    src_y = cy + (r - cy) / 0.8
    inside = (src_y >= 0) & (src_y <= rows - 1)
    assert np.allclose(out[0], src_x, rtol=0, atol=TOL)  # zooming in: always inside
    assert np.allclose(out[1][inside], src_y[inside], rtol=0, atol=TOL)
    beyond = (src_y <= -1) | (src_y >= rows)  # a whole pixel outside: only zeros around
    assert beyond.any() and np.all(out[1][beyond] == 0)
    assert out[0][int(cy), int(cx)] == cx  # the centre stays put


@pytest.mark.parametrize("shift", [(2, -1), (-3, 0), (0, 4), (30, 0)])
def test_integer_translation_and_constant_field_shift_exactly(shift):
    rng = np.random.default_rng(4)
    image = rng.integers(1, 256, (1, 7, 8)).astype(np.float64)
    sx, sy = shift
    expected = np.zeros_like(image[0])
    rows, cols = image.shape[1:]
    for r in range(rows):
        for c in range(cols):
            if 0 <= r - sy < rows and 0 <= c - sx < cols:
                expected[r, c] = image[0, r - sy, c - sx]
    translated = run_kernel(image, make_draw(shift=shift))
    assert np.array_equal(translated[0], expected)
    # A constant displacement field of -shift (the field says where each pixel reads from).
    bank = np.zeros((2, 2, rows * cols), np.float32)
    bank[0, 0], bank[0, 1] = -sx, -sy
    draw = make_draw()
    draw[0, [dk.FIELD_I, dk.FIELD_J, dk.WEIGHT_I, dk.WEIGHT_J]] = 0, 1, 1.0, 0.0
    assert np.array_equal(run_kernel(image, draw, bank)[0], expected)


def test_kernel_agrees_with_the_plain_reference_on_random_draws():
    rng = np.random.default_rng(5)
    rows, cols = 12, 10
    plan = DistortionPlan(EVERYTHING, (rows, cols), seed=6, bank_size=16)
    images = rng.uniform(-1, 1, (20, rows, cols))
    draws = plan.draw_epoch(rng, 20)
    out = run_kernel(images, draws, plan.bank)
    ref = np.stack([ref_distort(images[k], draws[k], plan.bank) for k in range(20)])
    assert np.abs(out - ref).max() < TOL
    assert np.abs(out - images).max() > 0.5  # the draws did distort
    broken = draws.copy()
    broken[:, dk.WEIGHT_I] *= 1.01
    assert np.abs(run_kernel(images, broken, plan.bank) - ref).max() > 1e-4


# -- the field bank and the draws ------------------------------------------------------------


def test_bank_fields_have_the_variance_of_smoothed_uniform_noise():
    sigma = 2.0
    plan = DistortionPlan(Distortion(elastic_sigma=sigma, elastic_alpha=1.0), (20, 20), seed=0,
                          bank_size=200)
    taps = _gaussian(sigma)
    # Var of uniform(-1, 1) is 1/3; the 2-D kernel is the outer product of the 1-D one.
    expected = math.sqrt(1 / 3) * float(np.sum(taps**2))
    assert plan.bank.shape == (200, 2, 400) and plan.bank.dtype == np.float32
    assert abs(plan.bank.std() / expected - 1) < 0.05
    # stationary: the border is no weaker than the middle (no zero padding in the smoothing)
    fields = plan.bank.reshape(200, 2, 20, 20)
    assert abs(fields[..., 0, :].std() / fields[..., 10, :].std() - 1) < 0.1
    # neighbouring pixels move together (smoothed), pixels 10 apart hardly
    near = np.corrcoef(fields[..., 5, 5].ravel(), fields[..., 5, 6].ravel())[0, 1]
    far = np.corrcoef(fields[..., 5, 5].ravel(), fields[..., 5, 15].ravel())[0, 1]
    assert near > 0.8 and abs(far) < 0.2


def test_draws_stay_in_their_ranges_and_fill_them():
    d = Distortion(elastic_sigma=1, elastic_alpha=3, rotate=10, scale_x=0.2, translate=2)
    plan = DistortionPlan(d, (8, 8), seed=0, bank_size=10)
    draws = plan.draw_epoch(np.random.default_rng(0), 5000)
    scale_y_inv = np.hypot(draws[:, dk.A10], draws[:, dk.A11])  # 1 / (1 + scale_y) = 1
    assert np.allclose(scale_y_inv, 1.0)
    angle = np.degrees(np.arctan2(draws[:, dk.A10], draws[:, dk.A11]))
    assert angle.min() >= -10 and angle.max() <= 10 and angle.max() - angle.min() > 19
    scale_x = 1 / np.hypot(draws[:, dk.A00], draws[:, dk.A01]) - 1
    assert scale_x.min() >= -0.2 - 1e-12 and scale_x.max() <= 0.2 + 1e-12
    fields = draws[:, [dk.FIELD_I, dk.FIELD_J]]
    assert np.all(fields[:, 0] != fields[:, 1]) and set(fields.ravel()) == set(range(10))
    weights = np.hypot(draws[:, dk.WEIGHT_I], draws[:, dk.WEIGHT_J])
    assert np.allclose(weights, 3.0)  # cos^2 + sin^2 keeps the variance of one field


def test_same_seed_same_output_and_different_seed_different_output():
    images = jitnet.load_mnist()[1].images[:50]
    first = distort(images, EVERYTHING, seed=11, image_shape=(28, 28))
    again = distort(images, EVERYTHING, seed=11, image_shape=(28, 28))
    other = distort(images, EVERYTHING, seed=12, image_shape=(28, 28))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    assert np.abs(first - images / 255).max() > 0.5


def test_epoch_draws_are_reproducible_from_a_saved_generator_state():
    plan = DistortionPlan(EVERYTHING, (28, 28), seed=0, bank_size=8)
    rng = np.random.default_rng(42)
    plan.draw_epoch(rng, 100)  # an earlier epoch
    saved = rng.bit_generator.state
    epoch = plan.draw_epoch(rng, 100)
    after = rng.random()
    resumed = np.random.default_rng(0)
    resumed.bit_generator.state = saved
    assert np.array_equal(plan.draw_epoch(resumed, 100), epoch)
    assert resumed.random() == after  # the generator ends where an uninterrupted run's does
    again = DistortionPlan(EVERYTHING, (28, 28), seed=0, bank_size=8)
    assert np.array_equal(again.bank, plan.bank)


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, message", [
    ({"elastic_sigma": -1}, "elastic_sigma must be >= 0"),
    ({"elastic_alpha": -0.5, "elastic_sigma": 1}, "elastic_alpha must be >= 0"),
    ({"elastic_alpha": 34}, "elastic_alpha > 0 needs elastic_sigma > 0"),
    ({"rotate": 181}, r"rotate must be in \[0, 180\]"),
    ({"rotate": -5}, r"rotate must be in \[0, 180\]"),
    ({"scale_x": 1.0}, r"scale_x must be in \[0, 1\)"),
    ({"scale_y": -0.1}, r"scale_y must be in \[0, 1\)"),
    ({"shear": 90}, r"shear must be in \[0, 90\)"),
    ({"translate": float("inf")}, "translate must be finite"),
    ({"rotate": float("nan")}, "rotate must be finite"),
    ({"rotate": "10"}, "rotate must be a number"),
    ({"shear": True}, "shear must be a number"),
])
def test_bad_distortion_parameters_raise_one_clear_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Distortion(**kwargs)


def test_valid_limits_are_accepted_and_stored_as_floats():
    d = Distortion(elastic_sigma=4, elastic_alpha=34, rotate=180, scale_x=0.99, shear=89)
    assert d.rotate == 180.0 and isinstance(d.elastic_sigma, float)
    assert d.elastic and not d.is_identity and Distortion().is_identity
    assert Distortion(elastic_sigma=3).is_identity  # no alpha: no displacement
    assert repr(Distortion(rotate=15, translate=2)) == "Distortion(rotate=15.0, translate=2.0)"
    assert repr(Distortion()) == "Distortion()"
    with pytest.raises(AttributeError):
        d.rotate = 3  # frozen


@pytest.mark.parametrize("call, message", [
    (lambda: DistortionPlan(Distortion(), (0, 5)), "image_shape must be two positive ints"),
    (lambda: DistortionPlan(Distortion(), (28,)), "image_shape must be two positive ints"),
    (lambda: DistortionPlan(Distortion(), (2.5, 3)), "image_shape must be two positive ints"),
    (lambda: DistortionPlan(ELASTIC, (8, 8), bank_size=1), "bank_size must be an integer >= 2"),
    (lambda: DistortionPlan(Distortion(elastic_sigma=9, elastic_alpha=1), (8, 6)),
     "elastic_sigma 9 is wider than the 8x6 image"),
    (lambda: DistortionPlan({"rotate": 5}, (8, 8)), "distortion must be a jitnet.Distortion"),
    (lambda: DistortionPlan(ELASTIC, (8, 8)).draw_epoch(np.random.RandomState(0), 3),
     "rng must be a numpy.random.Generator"),
    (lambda: DistortionPlan(ELASTIC, (8, 8)).draw_epoch(np.random.default_rng(0), -1),
     "n_samples must be >= 0"),
    (lambda: distort(np.zeros((3, 784), np.uint8), ELASTIC), "images must be .N, rows, cols."),
    (lambda: distort(np.zeros(784, np.uint8), ELASTIC), "images must be .N, rows, cols."),
    (lambda: distort(np.zeros((3, 780), np.uint8), ELASTIC, image_shape=(28, 28)),
     "do not hold 28x28 images"),
    (lambda: distort(np.full((2, 3, 3), np.nan), ELASTIC), "NaN or inf"),
    (lambda: distort(np.zeros((2, 3, 3), "U1"), ELASTIC), "must be numeric"),
    (lambda: distort(np.zeros((2, 3, 3)), ELASTIC, scale=0), "scale must be a positive"),
])
def test_bad_plans_and_images_raise_one_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# -- properties ------------------------------------------------------------------------------

valid_distortions = st.builds(
    Distortion,
    elastic_sigma=st.floats(0.5, 3.0),
    elastic_alpha=st.floats(0.0, 10.0),
    rotate=st.floats(0.0, 180.0),
    scale_x=st.floats(0.0, 0.9),
    scale_y=st.floats(0.0, 0.9),
    shear=st.floats(0.0, 60.0),
    translate=st.floats(0.0, 5.0),
)


@settings(max_examples=60, deadline=None)
@given(
    distortion=valid_distortions,
    rows=st.integers(1, 9),
    cols=st.integers(1, 9),
    use_uint8=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_outputs_are_finite_and_within_the_input_range(distortion, rows, cols, use_uint8, seed):
    rng = np.random.default_rng(seed)
    if use_uint8:
        images = rng.integers(0, 256, (3, rows, cols), dtype=np.uint8)
    else:
        images = rng.uniform(-5, 5, (3, rows, cols)) + rng.uniform(-3, 3)
    try:
        out = distort(images, distortion, seed=seed)
    except ValueError as error:  # the one documented refusal: a field wider than the image
        assert "wider than" in str(error) and distortion.elastic_sigma > max(rows, cols)
        return
    scale = 1 / 255 if use_uint8 else 1.0
    low = min(0.0, images.min() * scale)  # zero comes in from outside the image
    high = max(0.0, images.max() * scale)
    slack = 1e-12 * max(1.0, abs(low), abs(high))
    assert out.shape == images.shape and np.isfinite(out).all()
    assert out.min() >= low - slack and out.max() <= high + slack


# -- the benchmark ---------------------------------------------------------------------------


def test_benchmark_runs_validates_and_writes_its_report(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / "distort.py"
    spec = importlib.util.spec_from_file_location("bench_distort", path)
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # Numba's cache looks its functions' module up by name
    spec.loader.exec_module(bench)
    code = bench.main(["--samples", "300", "--fresh-samples", "40", "--repeats", "1",
                       "--out", str(tmp_path)])
    assert code == 0
    report = (tmp_path / "distort-latest.md").read_text()
    assert "## Distortion per sample" in report and "fresh field per sample" in report
    assert "784-800-10" in report and (tmp_path / "distort-latest.json").is_file()
    assert "VALIDATION FAILED" not in capsys.readouterr().out
