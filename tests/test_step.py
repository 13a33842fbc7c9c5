"""The per-sample step written once (jitnet.engine.kernels): over a column block of the first
hidden layer it does exactly the whole layer's arithmetic for those units, which is what lets
the parallel epoch share it with the serial one."""

import numpy as np
import pytest

from jitnet.engine import kernels
from jitnet.engine.buffers import Block, _layer
from jitnet.engine.codes import SIGMOID, TANH
from jitnet.engine.network import Network

SIZES = [24, 13, 7, 3]
CUTS = [(0, 13), (0, 5), (5, 13), (4, 9)]


def block_in_params(net, lo, hi):
    """Units [lo, hi) of the first hidden layer, where they lie in the network's params."""
    lay = net._layout
    return Block(net.params, int(lay.w_off[0]) + lo, int(lay.stride0), int(lay.b_off[0]) + lo,
                 lo, hi)


@pytest.fixture(params=["float64", "float32"])
def case(request):
    """A network whose first layer sees a sample with nine non-zero inputs, run forward, with
    its error terms computed (scratch filled), and its nnz."""
    dtype = request.param
    net = Network(SIZES, activation="tanh", dtype=dtype, seed=3)
    rng = np.random.default_rng(7)
    x = np.zeros(SIZES[0], np.uint8)
    x[rng.choice(SIZES[0], 9, replace=False)] = rng.integers(1, 256, 9)
    t = net.targets(np.array([1]))[0]
    scratch = net._scratch()
    kernels._backprop(net.params, net._layout, scratch, x, t, 1 / 255, TANH, SIGMOID)
    nnz = kernels._gather_input(x, 1 / 255, scratch.nz_idx, scratch.nz_val)
    return net, scratch, t, nnz


@pytest.mark.parametrize("lo, hi", CUTS)
def test_the_first_layer_of_a_block_is_the_whole_layers_units(case, lo, hi):
    net, scratch, _, nnz = case
    whole = _layer(scratch.act, net._layout, 1).copy()
    a1 = _layer(scratch.act, net._layout, 1)
    a1[:] = np.nan
    kernels._first_layer(block_in_params(net, lo, hi), net._layout, scratch, nnz, TANH,
                         None, None)
    assert np.array_equal(a1[lo:hi], whole[lo:hi])  # bitwise: the same sums in the same order
    assert np.isnan(a1[:lo]).all() and np.isnan(a1[hi:]).all()  # nothing outside the block


@pytest.mark.parametrize("lo, hi", CUTS)
def test_the_error_terms_of_a_block_are_the_whole_layers(case, lo, hi):
    net, scratch, t, _ = case
    whole = scratch.delta.copy()
    d1 = _layer(scratch.delta, net._layout, 1)
    d1[:] = np.nan
    loss = kernels._deltas(net.params, net._layout, scratch, t, lo, hi, TANH, SIGMOID)
    assert np.array_equal(d1[lo:hi], whole[: SIZES[1]][lo:hi])
    assert np.isnan(d1[:lo]).all() and np.isnan(d1[hi:]).all()
    assert np.array_equal(scratch.delta[SIZES[1]:], whole[SIZES[1]:])  # the layers above
    assert loss > 0


def test_blocks_of_the_update_add_up_to_the_whole_update(case):
    """Each rank updates its block of Wt[0], b[0] and W[1][:, lo:hi], and its own copy of the
    layers above: the copies agree with each other and with the whole update, bitwise."""
    net, scratch, _, nnz = case
    eta = net.dtype.type(0.3)
    start = net.params.copy()

    def updated(lo, hi):
        net.params[:] = start
        kernels._update_first_layer(block_in_params(net, lo, hi), net._layout, scratch, nnz,
                                    eta, None, None, 0.0)
        kernels._update_later_layers(net.params, net._layout, scratch, lo, hi, eta, None, None,
                                     0.0)
        weights = [W.copy() for W in net.weights] + [b.copy() for b in net.biases]
        net.params[:] = start
        return weights

    before = [W.copy() for W in net.weights] + [b.copy() for b in net.biases]
    whole, left, right = updated(0, 13), updated(0, 5), updated(5, 13)
    W0, W1, b0 = 0, 1, len(SIZES) - 1  # indices into the lists: W[0], W[1], b[0]
    assert not np.array_equal(whole[W0], before[W0])  # the sample moved the first layer
    for k in (W0, b0):  # units [lo, hi) of the first hidden layer are rows of W[0] and b[0]
        assert np.array_equal(whole[k][:5], left[k][:5])
        assert np.array_equal(whole[k][5:], right[k][5:])
        assert np.array_equal(left[k][5:], before[k][5:])  # outside the block: untouched
    assert np.array_equal(whole[W1][:, :5], left[W1][:, :5])
    assert np.array_equal(whole[W1][:, 5:], right[W1][:, 5:])
    for k in range(len(whole)):
        if k not in (W0, W1, b0):  # the layers above: every rank's copy the same
            assert not np.array_equal(whole[k], before[k])
            assert np.array_equal(whole[k], left[k]) and np.array_equal(whole[k], right[k])


def test_a_broken_block_is_caught(case):
    """The check above can fail: a block one unit off reads the wrong columns."""
    net, scratch, _, nnz = case
    whole = _layer(scratch.act, net._layout, 1).copy()
    lay = net._layout
    off_by_one = Block(net.params, int(lay.w_off[0]) + 6, int(lay.stride0),
                       int(lay.b_off[0]) + 6, 5, 13)
    kernels._first_layer(off_by_one, net._layout, scratch, nnz, TANH, None, None)
    assert not np.array_equal(_layer(scratch.act, net._layout, 1)[5:13], whole[5:13])
