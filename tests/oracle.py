"""An independent float64 numpy oracle of per-sample SGD, for the tests of the JIT engine.

Written from the equations, not from the kernels: activations and their derivatives are taken
from ``z`` (the kernels write derivatives in terms of the output ``a``), the softmax and the
cross-entropy from numpy's own ``logaddexp``-style formulas, and momentum eagerly (every weight's
velocity decays every sample; the kernels catch the first layer up lazily).
"""

import numpy as np

SCALED_A, SCALED_B = 1.7159, 2.0 / 3.0


def activate(z, f):
    """f(z) for a whole layer."""
    if f == "sigmoid":
        with np.errstate(over="ignore"):  # exp(-z) = inf gives the right limit, 0
            return 1.0 / (1.0 + np.exp(-z))
    if f == "tanh":
        return np.tanh(z)
    if f == "scaled_tanh":
        return SCALED_A * np.tanh(SCALED_B * z)
    if f == "relu":
        return np.maximum(z, 0.0)
    if f == "softmax":
        e = np.exp(z - z.max())
        return e / e.sum()
    raise ValueError(f)


def derivative(z, f):
    """f'(z), from z."""
    if f == "sigmoid":
        s = activate(z, "sigmoid")
        return s * (1.0 - s)
    if f == "tanh":
        return 1.0 - np.tanh(z) ** 2
    if f == "scaled_tanh":
        return SCALED_A * SCALED_B * (1.0 - np.tanh(SCALED_B * z) ** 2)
    if f == "relu":
        return (z > 0).astype(np.float64)
    raise ValueError(f)


def loss(z, y, t, output):
    """The sample's loss: E = 1/2 sum (t - y)^2, or -sum t log softmax(z) from z."""
    if output == "softmax":
        m = z.max()
        lse = m + np.log(np.sum(np.exp(z - m)))
        return float(np.sum(t * (lse - z)))
    return 0.5 * float(np.sum((t - y) ** 2))


def sgd(pairs, X, T, rate, hidden="sigmoid", output="sigmoid", momentum=0.0, velocity=None):
    """Per-sample SGD over the rows of X (float64) in order.

    Returns ``(pairs, velocity, mean loss)``: the trained ``(W, b)`` pairs, the velocity pairs
    (None without momentum) and the mean loss, each sample's measured before its update.
    ``delta = -dE/dz``: ``f'(z)(t - y)`` at a squared-error output, ``t - y`` at a softmax one.
    """
    Ws = [np.array(W, np.float64) for W, _ in pairs]
    bs = [np.array(b, np.float64) for _, b in pairs]
    if momentum and velocity is None:
        velocity = [(np.zeros_like(W), np.zeros_like(b)) for W, b in zip(Ws, bs)]
    vW = [np.array(v, np.float64) for v, _ in velocity] if momentum else None
    vb = [np.array(v, np.float64) for _, v in velocity] if momentum else None
    total = 0.0
    L = len(Ws)
    for x, t in zip(np.asarray(X, np.float64), np.asarray(T, np.float64)):
        a, zs = [x], []
        for l in range(L):
            zs.append(Ws[l] @ a[-1] + bs[l])
            a.append(activate(zs[-1], output if l == L - 1 else hidden))
        total += loss(zs[-1], a[-1], t, output)
        delta = [None] * L
        delta[-1] = t - a[-1] if output == "softmax" else derivative(zs[-1], output) * (t - a[-1])
        for l in range(L - 1, 0, -1):
            delta[l - 1] = derivative(zs[l - 1], hidden) * (Ws[l].T @ delta[l])
        for l in range(L):
            step_W, step_b = rate * np.outer(delta[l], a[l]), rate * delta[l]
            if momentum:
                vW[l] = momentum * vW[l] + step_W
                vb[l] = momentum * vb[l] + step_b
                step_W, step_b = vW[l], vb[l]
            Ws[l] += step_W
            bs[l] += step_b
    trained = list(zip(Ws, bs))
    return trained, (list(zip(vW, vb)) if momentum else None), total / max(len(X), 1)
