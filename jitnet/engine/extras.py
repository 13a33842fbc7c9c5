"""Nesterov's momentum and weight decay: scikit-learn's per-sample SGD (``solver='sgd',
batch_size=1``) beyond the tutorial's classical momentum, in the kernels' one step
(:func:`jitnet.engine.kernels._update_row`). Layout legend in :mod:`jitnet.engine.buffers`.

The step, for every weight w with velocity v (biases: h = 0)::

    v_new = mu v + eta delta x - h w        h = eta * l2[s], sample s's weight decay
    w_new = w + v_new                       classical momentum (mu = 0: plain SGD with decay)
    w_new = w + v_new + mu (v_new - v)      Nesterov's (scikit-learn's w += mu v_new - eta grad)

the gradient step of the loss E + 1/2 l2[s] |W|^2 (scikit-learn's alpha divided by the sample's
weight). A first-layer row at zero input then moves by a fixed linear map A of (w, v) at every
sample, and after d samples by A^d = [[shrink, gain], [pull, decay]]: the tables ``shrink`` and
``pull`` here with momentum's ``gain`` and ``decay`` (:func:`_lag_tables`), so that such a row
can lag as it does under classical momentum and the first layer stays sparse. When l2 differs
between samples A does too: then ``every`` row is updated at every sample (no lag).

The loss then carries 1/2 l2[s] |W|^2 at every sample, every weight's square, also of the rows
that lag. ``stats`` follows the sums |W0|^2, W0.V0 and |V0|^2 of the first layer's true
(caught-up) weights and velocities through the samples: a row being updated books its squares
before (subtracted) and after its update (kept apart), the rest move on together by A
(:func:`_move_on`), and the layers above add up their squares as they are updated::

    stats: [|W0|^2, W0.V0, |V0|^2, |W[1:]|^2, the three of the updated rows after the update,
            |W[1:]|^2 after the update]
"""

from jitnet.engine.jit import jit, jit_inline


@jit_inline
def _gap(momentum, i):
    """How many samples first-layer row i has lagged since its last update (a table index)."""
    return min(momentum.clock[0] - 1 - momentum.last[i], momentum.decay.shape[0] - 1)


@jit_inline
def _lag_of(momentum, extras, d):
    """A^d = (shrink, gain, pull, decay) for a row that lagged d samples; without ``extras``
    (None) shrink = 1 and pull = 0 (classical momentum)."""
    if extras is None:
        return momentum.decay[0], momentum.gain[d], momentum.gain[0], momentum.decay[d]
    return extras.shrink[d], momentum.gain[d], extras.pull[d], momentum.decay[d]


@jit_inline
def _nesterov(momentum, extras):
    """None without ``extras`` (classical momentum, compiled apart); else the factor of
    Nesterov's extra move, mu for Nesterov's momentum and 0 for the classical one."""
    if extras is None:
        return None
    return momentum.mu if extras.nesterov else momentum.mu - momentum.mu  # in mu's dtype


@jit_inline
def _up_to_date(momentum):
    """A^0 = (shrink, gain, pull, decay) = (1, 0, 0, 1) in the tables' dtype: no lag."""
    return momentum.decay[0], momentum.gain[0], momentum.gain[0], momentum.decay[0]


@jit_inline
def _decays(extras):
    """Whether weight decay is on (else Nesterov's momentum alone)."""
    return extras.l2.shape[0] > 0


@jit_inline
def _book_squares(stats, first, ww, wv, vv, new_ww, new_wv, new_vv):
    """A row's squares into ``stats``: a first-layer row's before (out) and after its update
    (kept apart until :func:`_move_on`); a row above, its |w|^2 after the update."""
    if first:
        stats[0] -= ww
        stats[1] -= wv
        stats[2] -= vv
        stats[4] += new_ww
        stats[5] += new_wv
        stats[6] += new_vv
    else:
        stats[7] += new_ww


@jit_inline
def _move_on(momentum, extras):
    """After a sample's first-layer update: the rows that were not updated move on by A (one
    sample), and those that were join them again."""
    stats = extras.stats
    a, b, c, e = _lag_of(momentum, extras, 1)
    ww, wv, vv = stats[0], stats[1], stats[2]
    stats[0] = a * a * ww + 2.0 * a * b * wv + b * b * vv + stats[4]
    stats[1] = a * c * ww + (a * e + b * c) * wv + b * e * vv + stats[5]
    stats[2] = c * c * ww + 2.0 * c * e * wv + e * e * vv + stats[6]
    stats[4] = stats[5] = stats[6] = 0.0


@jit_inline
def _next_sample(extras):
    """|W[1:]|^2 after this sample's update is the next sample's."""
    extras.stats[3] = extras.stats[7]
    extras.stats[7] = 0.0


@jit
def _lag_tables(a, b, c, e, shrink, gain, pull, decay):
    """Fill the tables A^d = [[shrink, gain], [pull, decay]][d], d = 0, 1, ..., of the map
    A = [[a, b], [c, e]] of one sample at zero input, by repeated multiplication in float64."""
    ww, wv, vw, vv = 1.0, 0.0, 0.0, 1.0
    for d in range(shrink.shape[0]):
        shrink[d], gain[d], pull[d], decay[d] = ww, wv, vw, vv
        ww, wv, vw, vv = a * ww + b * vw, a * wv + b * vv, c * ww + e * vw, c * wv + e * vv
