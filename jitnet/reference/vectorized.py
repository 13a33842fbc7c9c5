"""The tutorial's numpy version: one fully connected layer object per layer.

Shapes: ``W: (n_out, n_in)``, ``b: (n_out,)``, ``input: (n_in,)``, ``output: (n_out,)``,
``delta: (n_out,)``. Vectors are 1-D (the tutorial uses (n, 1) columns; the arithmetic is the same).

The equations, for a sample ``x`` with target ``t`` and learning rate ``eta``:

- Eq. 1/2, :meth:`FullConnectedLayer.forward`: ``a = sigmoid(W @ x + b)`` (``b`` is the weight of
  the constant input 1);
- Eq. 3, :meth:`Network.calc_gradient`: ``delta = y * (1 - y) * (t - y)`` at the output;
- Eq. 4, :meth:`FullConnectedLayer.backward`:
  ``delta_prev = a_prev * (1 - a_prev) * (W.T @ delta)``;
- Eq. 5, :meth:`FullConnectedLayer.update`: ``W += eta * outer(delta, x)``, ``b += eta * delta``.

Every layer's ``W_grad`` is computed from the weights before the update, then all layers are
updated -- the tutorial's order, which the other engines follow too.
"""

import sys

import numpy as np

from jitnet.engine.checks import check_sizes, check_weight_pairs
from jitnet.reference._base import ReferenceNetwork


class SigmoidActivator:
    """The logistic function, with its derivative written in terms of its output."""

    def forward(self, weighted_input):
        """Return ``1 / (1 + exp(-z))`` elementwise."""
        with np.errstate(over="ignore"):  # exp(-z) = inf for z < -709 gives the right limit, 0
            return 1.0 / (1.0 + np.exp(-weighted_input))

    def backward(self, output):
        """Return the derivative at the point whose sigmoid is ``output``: ``a * (1 - a)``."""
        return output * (1.0 - output)


class FullConnectedLayer:
    """A fully connected layer ``output = activator(W @ input + b)``.

    Parameters
    ----------
    input_size, output_size : int
        ``n_in`` and ``n_out``.
    activator : SigmoidActivator
        The activation function and its derivative.
    rng : numpy.random.Generator
        Draws ``W`` and then ``b`` uniformly from [-0.1, 0.1).
    """

    def __init__(self, input_size, output_size, activator, rng):
        self.input_size = input_size
        self.output_size = output_size
        self.activator = activator
        self.W = rng.uniform(-0.1, 0.1, (output_size, input_size))
        self.b = rng.uniform(-0.1, 0.1, output_size)
        self.input = np.zeros(input_size)
        self.output = np.zeros(output_size)
        self.delta = np.zeros(input_size)
        self.W_grad = np.zeros((output_size, input_size))
        self.b_grad = np.zeros(output_size)

    def forward(self, input_array):
        """Eq. 1/2: ``output = sigmoid(W @ input + b)``; keeps ``input`` for :meth:`backward`."""
        self.input = input_array
        self.output = self.activator.forward(self.W @ input_array + self.b)
        return self.output

    def backward(self, delta_array):
        """Eq. 4 for the layer below, and this layer's ``delta * x`` gradients.

        Parameters
        ----------
        delta_array : ndarray, shape (n_out,)
            This layer's error term.

        Sets ``delta`` (n_in,), the error term of the layer below (meaningless, and unused, when
        the layer below is the input), ``W_grad = outer(delta_array, input)`` and
        ``b_grad = delta_array``: the tutorial's sign, ``-dE/dW`` and ``-dE/db``.
        """
        self.delta = self.activator.backward(self.input) * (self.W.T @ delta_array)
        self.W_grad = np.outer(delta_array, self.input)
        self.b_grad = delta_array

    def update(self, learning_rate):
        """Eq. 5: ``W += eta * W_grad``, ``b += eta * b_grad``."""
        self.W += learning_rate * self.W_grad
        self.b += learning_rate * self.b_grad

    def dump(self, file=None):
        """Print ``W`` and ``b``."""
        file = file if file is not None else sys.stdout
        print(f"W: {self.W}\nb: {self.b}", file=file)

    def __repr__(self):
        return f"FullConnectedLayer(input_size={self.input_size}, output_size={self.output_size})"


class Network(ReferenceNetwork):
    """The tutorial's fully connected sigmoid network in numpy, one layer object per layer.

    Parameters
    ----------
    layer_sizes : sequence of int
        Number of nodes per layer, input first, e.g. ``[784, 300, 10]``.
    seed : int or None
        Seed of the ``np.random.default_rng`` that draws the initial weights, layer by layer
        (``W`` then ``b``), uniformly from [-0.1, 0.1).

    Attributes
    ----------
    sizes : list of int
        The layer sizes.
    layers : list of FullConnectedLayer
        One per pair of adjacent sizes.
    """

    def __init__(self, layer_sizes, seed=None):
        self.sizes = check_sizes(layer_sizes)
        rng = np.random.default_rng(seed)
        self.activator = SigmoidActivator()
        self.layers = [
            FullConnectedLayer(n_in, n_out, self.activator, rng)
            for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:])
        ]

    def predict(self, sample):
        """Forward one sample ``x`` (array_like, shape (n_in,)) through every layer, Eq. 1/2.

        Returns the output layer's values ``y``: a float64 ndarray of shape (n_out,), a copy.
        """
        return self._forward(self._sample(sample)).copy()

    def _forward(self, output):
        """Forward a float64 vector through every layer; return the last layer's output."""
        for layer in self.layers:
            output = layer.forward(output)
        return output

    # train(labels, data_set, rate, iteration), train_one_sample(label, sample, rate) and
    # gradient(x, t) come from ReferenceNetwork; they check the input and call the methods below.

    def _train_one(self, label, sample, rate):
        """One SGD step on one sample given as float64 vectors: forward, gradients, updates."""
        self._forward(sample)
        self.calc_gradient(label)
        self.update_weight(rate)

    def calc_gradient(self, label):
        """Eq. 3 at the output, then :meth:`FullConnectedLayer.backward` from the top down.

        Uses the outputs of the last forward pass; sets every layer's ``W_grad``/``b_grad``
        (tutorial's sign, ``-dE/dw``) without changing any weight. Returns the last ``delta``.
        """
        output = self.layers[-1].output
        delta = self.activator.backward(output) * (label - output)
        for layer in reversed(self.layers):
            layer.backward(delta)
            delta = layer.delta
        return delta

    def update_weight(self, rate):
        """Eq. 5 on every layer."""
        for layer in self.layers:
            layer.update(rate)

    def get_gradient(self, label, sample):
        """The tutorial's gradient for one sample: ``(W_grad, b_grad) = (delta x^T, delta)``.

        Label first, as in the object version. The sign is the tutorial's, ``-dE/dw`` for
        ``E = 1/2 sum (t - y)^2``; :meth:`gradient` gives ``+dE/dw``. The weights do not change.

        Returns
        -------
        list of (ndarray, ndarray)
            Per layer, copies of ``W_grad`` (n_out, n_in) and ``b_grad`` (n_out,).
        """
        self._forward(self._sample(sample))
        self.calc_gradient(self._label(label))
        return [(layer.W_grad.copy(), layer.b_grad.copy()) for layer in self.layers]

    def get_weights(self):
        """Return ``(W, b)`` float64 copies per layer, ``W`` (n_out, n_in), ``b`` (n_out,)."""
        return [(layer.W.copy(), layer.b.copy()) for layer in self.layers]

    def set_weights(self, pairs):
        """Load ``(W, b)`` pairs as returned by :meth:`get_weights` (values are copied).

        Raises
        ------
        ValueError
            If the number of pairs, a shape, or a value (NaN, inf) does not fit.
        """
        for layer, (W, b) in zip(self.layers, check_weight_pairs(self.sizes, pairs)):
            layer.W, layer.b = W, b

    def dump(self, file=None):
        """Print every layer's ``W`` and ``b``."""
        for layer in self.layers:
            layer.dump(file=file)

    def __repr__(self):
        return f"Network(sizes={self.sizes}, engine='vectorized')"
