"""Gradient check (tutorial Eq. 6): back-propagation against central differences.

For every weight and bias ``w`` of a network, the numerical gradient of the loss of one sample
(the tutorial's squared error ``E = 1/2 sum (t - y)^2``, or the network's ``loss``:
:mod:`jitnet.evaluation.losses`),

    dE/dw ~ (E(w + eps) - E(w - eps)) / (2 eps),

is compared with the engine's back-propagated ``gradient(x, t)``. Both are ``+dE/dw`` (the tutorial
compared ``delta * x``, which is ``-dE/dw``, with a difference of the opposite sign in its numpy
version -- one of the bugs this module's tests guard against).

Works on every engine through ``get_weights``/``set_weights``/``predict``/``gradient`` only. One
parameter is perturbed at a time (``2 P`` forward passes, each after a full ``set_weights``: that is
``O(P^2)`` for the object version, fine on the small networks a gradient check is for). The weights
are restored bit for bit when the check returns, also when it raises.
"""

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from jitnet.engine.checks import check_sizes
from jitnet.engine.components import TARGET_OFF, TARGET_ON
from jitnet.engine.network import Network
from jitnet.evaluation.losses import BY_NAME, cross_entropy, squared_error
from jitnet.reference import make_network

__all__ = ["GradientCheckResult", "GradientEntry", "format_report", "gradient_check",
           "cross_entropy", "run_gradcheck", "squared_error"]

#: Default tolerances for float64 engines. With ``epsilon = 1e-4`` central differences are exact to
#: about ``eps^2 * |E'''| / 6 ~ 1e-9`` relative, and rounding adds ``~1e-16 * E / eps ~ 1e-12``
#: absolute. tests/test_gradcheck.py holds both sides: correct gradients stay below 1e-7 relative
#: error, and one entry off by 1e-4 relative fails.
RTOL = 1e-6
ATOL = 1e-9

#: Tolerances used when the engine computes in float32 (``net.dtype``): rounding alone gives
#: ``~6e-8 * E / eps ~ 1e-4`` absolute error in the numerical gradient. Use ``epsilon ~ 1e-2``.
RTOL_FLOAT32 = 1e-2
ATOL_FLOAT32 = 1e-4


class GradientEntry(NamedTuple):
    """One parameter of a gradient check."""

    layer: int
    kind: str  # 'W' or 'b'
    index: tuple  # (j, i) for W, (j,) for b
    expected: float  # numerical dE/dw
    actual: float  # back-propagated dE/dw
    abs_error: float
    rel_error: float

    @property
    def name(self):
        """The parameter's name, e.g. ``W1[3,0]`` or ``b0[2]``."""
        return f"{self.kind}{self.layer}[{','.join(str(k) for k in self.index)}]"


@dataclass(frozen=True, repr=False)
class GradientCheckResult:
    """The outcome of :func:`gradient_check`, one row per parameter.

    Parameters are listed layer by layer, ``W`` (row-major) then ``b``.

    Attributes
    ----------
    layer : ndarray of int, shape (P,)
        Layer of each parameter (0 is the first weight layer).
    kind : ndarray of str, shape (P,)
        ``'W'`` or ``'b'``.
    index : list of tuple, length P
        ``(j, i)`` for ``W[j, i]``, ``(j,)`` for ``b[j]``.
    expected : ndarray, shape (P,)
        Numerical ``dE/dw`` by central differences.
    actual : ndarray, shape (P,)
        The engine's back-propagated ``dE/dw``.
    epsilon, rtol, atol : float
        The step and the tolerances: a parameter passes when
        ``|expected - actual| <= atol + rtol * max(|expected|, |actual|)``.
    """

    layer: np.ndarray
    kind: np.ndarray
    index: list
    expected: np.ndarray
    actual: np.ndarray
    epsilon: float
    rtol: float
    atol: float

    @property
    def abs_error(self):
        """``|expected - actual|`` per parameter."""
        return np.abs(self.expected - self.actual)

    @property
    def rel_error(self):
        """``|expected - actual| / max(|expected|, |actual|)`` per parameter (0 if both are 0)."""
        scale = np.maximum(np.abs(self.expected), np.abs(self.actual))
        with np.errstate(invalid="ignore", divide="ignore"):
            rel = self.abs_error / scale
        return np.where(scale > 0, rel, np.where(self.abs_error > 0, np.inf, 0.0))

    @property
    def tolerance(self):
        """The allowed absolute error per parameter, ``atol + rtol * max(|expected|, |actual|)``."""
        return self.atol + self.rtol * np.maximum(np.abs(self.expected), np.abs(self.actual))

    @property
    def ok(self):
        """Per parameter, whether it is within tolerance (NaN counts as a failure)."""
        return self.abs_error <= self.tolerance

    @property
    def n_params(self):
        """The number of parameters checked."""
        return len(self.expected)

    @property
    def n_failed(self):
        """The number of parameters out of tolerance."""
        return int(np.count_nonzero(~self.ok))

    @property
    def max_abs_error(self):
        """The largest ``|expected - actual|``."""
        return float(self.abs_error.max()) if self.n_params else 0.0

    @property
    def max_rel_error(self):
        """The largest relative error (see :attr:`rel_error`)."""
        return float(self.rel_error.max()) if self.n_params else 0.0

    @property
    def passed(self):
        """True when every parameter is within tolerance."""
        return bool(self.ok.all())

    def __bool__(self):
        return self.passed

    def __len__(self):
        return self.n_params

    def entry(self, k):
        """Return parameter ``k`` as a :class:`GradientEntry`."""
        return GradientEntry(
            int(self.layer[k]),
            str(self.kind[k]),
            self.index[k],
            float(self.expected[k]),
            float(self.actual[k]),
            float(self.abs_error[k]),
            float(self.rel_error[k]),
        )

    def worst(self, n=5):
        """The ``n`` worst parameters, worst first.

        "Worst" is the ratio of the absolute error to the parameter's tolerance, the quantity
        that decides :attr:`passed` (NaN ranks first).

        Returns
        -------
        list of GradientEntry
        """
        return [self.entry(k) for k in self._worst_indices(n)]

    def _worst_indices(self, n):
        """Indices of the ``n`` worst parameters, worst first."""
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = self.abs_error / self.tolerance
        ratio = np.where(np.isnan(ratio), np.inf, ratio)
        return np.argsort(-ratio, kind="stable")[: max(int(n), 0)]

    def __repr__(self):
        return (
            f"GradientCheckResult(passed={self.passed}, n_params={self.n_params}, "
            f"n_failed={self.n_failed}, max_abs_error={self.max_abs_error:.3g}, "
            f"max_rel_error={self.max_rel_error:.3g}, epsilon={self.epsilon:g}, "
            f"rtol={self.rtol:g}, atol={self.atol:g})"
        )


def _loss_function(net):
    """The loss the engine back-propagates: ``net.loss`` if it has one, else the tutorial's."""
    return BY_NAME.get(getattr(net, "loss", "squared"), squared_error)


def _default_tolerances(net):
    """Tolerances that fit the precision the engine computes in."""
    try:
        dtype = np.dtype(getattr(net, "dtype", np.float64))
    except TypeError:
        dtype = np.dtype(np.float64)
    if dtype.kind == "f" and dtype.itemsize < 8:
        return RTOL_FLOAT32, ATOL_FLOAT32
    return RTOL, ATOL


def gradient_check(net, x, t, epsilon=1e-4, rtol=None, atol=None):
    """Compare a network's back-propagated gradient with central differences (tutorial Eq. 6).

    Parameters
    ----------
    net : network
        Any engine: needs ``get_weights()``, ``set_weights(pairs)``, ``predict(x)`` and
        ``gradient(x, t)`` (``+dE/dw`` per layer as ``(dW, db)``); ``E`` is the network's
        ``loss`` (:mod:`jitnet.evaluation.losses`), the squared error when it has none.
    x : array_like, shape (n_in,)
        The input sample.
    t : array_like, shape (n_out,)
        The target vector.
    epsilon : float
        The step of the central differences.
    rtol, atol : float or None
        A parameter passes when ``|expected - actual| <= atol + rtol * max(|expected|, |actual|)``.
        ``None`` picks :data:`RTOL`/:data:`ATOL` (1e-6/1e-9) for float64 engines and
        :data:`RTOL_FLOAT32`/:data:`ATOL_FLOAT32` when ``net.dtype`` is float32.

    Returns
    -------
    GradientCheckResult
        Per parameter the expected (numerical) and actual (back-propagated) ``dE/dw``, the
        largest errors and whether the check passed.

    Notes
    -----
    The weights are restored bit for bit before returning, also when an exception is raised.
    """
    epsilon = float(epsilon)
    if not (np.isfinite(epsilon) and epsilon > 0):
        raise ValueError(f"epsilon must be a positive number, got {epsilon!r}")
    default_rtol, default_atol = _default_tolerances(net)
    rtol = default_rtol if rtol is None else float(rtol)
    atol = default_atol if atol is None else float(atol)
    x = np.asarray(x, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    error = _loss_function(net)

    original = net.get_weights()  # copies: never modified below, so restoring is exact
    try:
        grads = net.gradient(x, t)
        if len(grads) != len(original):
            raise ValueError(
                f"gradient() returned {len(grads)} layers, the network has {len(original)}"
            )
        layers, kinds, indices, expected, actual = [], [], [], [], []
        work = [(W.copy(), b.copy()) for W, b in original]
        for layer, ((W, b), (dW, db)) in enumerate(zip(work, grads)):
            for kind, param, grad in (("W", W, dW), ("b", b, db)):
                grad = np.asarray(grad, dtype=np.float64)
                if grad.shape != param.shape:
                    raise ValueError(
                        f"gradient() layer {layer} d{kind} has shape {grad.shape}, "
                        f"expected {param.shape}"
                    )
                for index in np.ndindex(param.shape):
                    w = param[index]
                    w_plus, w_minus = w + epsilon, w - epsilon
                    param[index] = w_plus
                    net.set_weights(work)
                    e_plus = error(net.predict(x), t)
                    param[index] = w_minus
                    net.set_weights(work)
                    e_minus = error(net.predict(x), t)
                    param[index] = w
                    # the step actually taken, (w + eps) - (w - eps), is 2 eps only up to rounding
                    expected.append((e_plus - e_minus) / (w_plus - w_minus))
                    actual.append(float(grad[index]))
                    layers.append(layer)
                    kinds.append(kind)
                    indices.append(tuple(int(k) for k in index))
    finally:
        net.set_weights(original)

    return GradientCheckResult(
        layer=np.array(layers, dtype=np.int64),
        kind=np.array(kinds, dtype="<U1"),
        index=indices,
        expected=np.array(expected, dtype=np.float64),
        actual=np.array(actual, dtype=np.float64),
        epsilon=epsilon,
        rtol=rtol,
        atol=atol,
    )


def format_report(result, top=5):
    """A compact table of the worst parameters and one summary line.

    Parameters
    ----------
    result : GradientCheckResult
        The outcome of :func:`gradient_check`.
    top : int
        How many of the worst parameters to list (see :meth:`GradientCheckResult.worst`).

    Returns
    -------
    str
        Aligned rows ``param  expected  actual  abs err  rel err  ok``, then a line that starts
        with ``gradient check passed`` or ``gradient check FAILED``.
    """
    header = ("param", "expected", "actual", "abs err", "rel err", "")
    ok = result.ok
    rows = []
    for k in result._worst_indices(top):
        e = result.entry(k)
        rows.append(
            (
                e.name,
                f"{e.expected: .6e}",
                f"{e.actual: .6e}",
                f"{e.abs_error:.2e}",
                f"{e.rel_error:.2e}",
                "ok" if ok[k] else "FAIL",
            )
        )
    lines = []
    if rows:
        widths = [max(len(r[c]) for r in [header] + rows) for c in range(len(header))]
        for r in [header] + rows:
            cells = [r[0].ljust(widths[0])] + [r[c].rjust(widths[c]) for c in range(1, len(r))]
            lines.append("  ".join(cells).rstrip())
    verdict = (
        f"passed: {result.n_params} parameters"
        if result.passed
        else f"FAILED: {result.n_failed} of {result.n_params} parameters out of tolerance"
    )
    lines.append(
        f"gradient check {verdict}, "
        f"max abs error {result.max_abs_error:.2e}, max rel error {result.max_rel_error:.2e} "
        f"(epsilon {result.epsilon:g}, rtol {result.rtol:g}, atol {result.atol:g})"
    )
    return "\n".join(lines)


def run_gradcheck(sizes, engine="jit", seed=0, epsilon=1e-4, activation="sigmoid",
                  loss="squared"):
    """Gradient-check a freshly built random network of one engine.

    Parameters
    ----------
    sizes : sequence of int
        Layer sizes, e.g. ``[8, 5, 3]``.
    engine : {"object", "vectorized", "jit"}
        Which implementation to check (``"jit"`` is :class:`jitnet.Network` in float64).
    seed : int
        Seeds the initial weights; ``np.random.default_rng(seed)`` draws ``x`` uniform in [0, 1)
        and ``t``: 0.1 or 0.9 per entry for the squared error, one-hot for cross-entropy.
    epsilon : float
        The step of the central differences.
    activation, loss : str
        The JIT engine's recipe (see :class:`jitnet.Network`); the references implement only
        the tutorial's (sigmoid, squared).

    Returns
    -------
    GradientCheckResult
    """
    sizes = check_sizes(sizes)
    if engine == "jit":
        net = Network(sizes, activation=activation, loss=loss, dtype="float64", seed=seed)
    elif (activation, loss) != ("sigmoid", "squared"):
        raise ValueError(f"the {engine} engine implements only the sigmoid with the squared "
                         f"error, not {activation} with {loss}")
    else:
        net = make_network(sizes, engine=engine, seed=seed)
    rng = np.random.default_rng(seed)
    x = rng.random(sizes[0])
    if loss == "cross_entropy":
        t = np.eye(sizes[-1])[rng.integers(sizes[-1])]
    else:
        t = np.where(rng.random(sizes[-1]) < 0.5, TARGET_OFF, TARGET_ON)
    return gradient_check(net, x, t, epsilon=epsilon)
