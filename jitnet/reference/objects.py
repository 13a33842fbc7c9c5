"""The tutorial's object version: one Python object per node and per connection.

Every neuron is a :class:`Node` that knows its upstream and downstream :class:`Connection`\\ s; the
bias is a :class:`ConstNode` whose output is always 1, appended to every :class:`Layer`, so a bias
is an ordinary connection weight. All arithmetic is on plain Python floats (numpy scalars would make
this slow version slower still); numpy only appears at the boundary (``predict``'s return value,
``get_weights``/``set_weights``).

The equations, for a sample ``x`` with target ``t`` and learning rate ``eta``:

- Eq. 1/2, forward: ``a_j = sigmoid(sum_i w_ji * a_i)`` over the upstream nodes, bias included;
- Eq. 3, output layer: ``delta_j = y_j * (1 - y_j) * (t_j - y_j)``;
- Eq. 4, hidden layer: ``delta_j = a_j * (1 - a_j) * sum_k w_kj * delta_k`` over downstream nodes;
- Eq. 5, update: ``w_ji += eta * delta_j * a_i``.

All deltas of one sample are computed from the weights before the update, then every weight is
updated -- the tutorial's order, which the other engines follow too.

This is far too slow for MNIST epochs (hours); it exists to be obviously correct.
"""

import math
import random
import sys

import numpy as np

from jitnet.engine.checks import check_sizes, check_weight_pairs
from jitnet.reference._base import ReferenceNetwork


def sigmoid(z):
    """Return the logistic function ``1 / (1 + exp(-z))`` of a Python float."""
    try:
        return 1.0 / (1.0 + math.exp(-z))
    except OverflowError:  # exp(-z) overflows for z < -709: the limit is 0
        return 0.0


class Node:
    """A neuron: its output ``a``, its error term ``delta`` and its connections.

    Parameters
    ----------
    layer_index : int
        Index of the layer the node belongs to (0 is the input layer).
    node_index : int
        Index of the node within its layer.
    """

    def __init__(self, layer_index, node_index):
        self.layer_index = layer_index
        self.node_index = node_index
        self.downstream = []
        self.upstream = []
        self.output = 0.0
        self.delta = 0.0

    def set_output(self, output):
        """Set the output directly (input-layer nodes take the sample's value)."""
        self.output = float(output)

    def append_downstream_connection(self, conn):
        """Add a connection to a node of the next layer."""
        self.downstream.append(conn)

    def append_upstream_connection(self, conn):
        """Add a connection from a node of the previous layer."""
        self.upstream.append(conn)

    def calc_output(self):
        """Eq. 1/2: ``output = sigmoid(sum of upstream output * weight)``, bias included."""
        z = 0.0
        for conn in self.upstream:
            z += conn.upstream_node.output * conn.weight
        self.output = sigmoid(z)

    def calc_hidden_layer_delta(self):
        """Eq. 4: ``delta = a * (1 - a) * sum of downstream delta * weight``."""
        downstream_delta = 0.0
        for conn in self.downstream:
            downstream_delta += conn.downstream_node.delta * conn.weight
        self.delta = self.output * (1.0 - self.output) * downstream_delta

    def calc_output_layer_delta(self, label):
        """Eq. 3: ``delta = y * (1 - y) * (t - y)`` for this node's target ``label``."""
        self.delta = self.output * (1.0 - self.output) * (label - self.output)

    def __str__(self):
        lines = [
            f"node {self.layer_index}-{self.node_index}: "
            f"output {self.output:.6g}  delta {self.delta:.6g}"
        ]
        if self.upstream:
            lines.append("  upstream:   " + "  ".join(str(c) for c in self.upstream))
        if self.downstream:
            lines.append("  downstream: " + "  ".join(str(c) for c in self.downstream))
        return "\n".join(lines)

    def __repr__(self):
        return f"{type(self).__name__}({self.layer_index}, {self.node_index})"


class ConstNode(Node):
    """The bias node of a layer: its output is always 1 and it has no upstream connections."""

    def __init__(self, layer_index, node_index):
        super().__init__(layer_index, node_index)
        self.output = 1.0

    def set_output(self, output):
        """Refuse: the output of a bias node is the constant 1."""
        raise TypeError("the output of a ConstNode is always 1")

    def calc_output(self):
        """Nothing to compute: the output stays 1."""

    def calc_hidden_layer_delta(self):
        """Eq. 4 gives 0 here (``a * (1 - a)`` with ``a = 1``); the bias node takes no update."""
        self.delta = 0.0

    def __str__(self):
        lines = [f"const node {self.layer_index}-{self.node_index}: output 1"]
        if self.downstream:
            lines.append("  downstream: " + "  ".join(str(c) for c in self.downstream))
        return "\n".join(lines)


class Layer:
    """One layer: ``node_count`` nodes followed by one :class:`ConstNode` (the bias).

    Parameters
    ----------
    layer_index : int
        Index of the layer (0 is the input layer).
    node_count : int
        Number of real nodes; ``nodes`` has one more, the bias node, at the end.
    """

    def __init__(self, layer_index, node_count):
        self.layer_index = layer_index
        self.nodes = [Node(layer_index, i) for i in range(node_count)]
        self.nodes.append(ConstNode(layer_index, node_count))

    def set_output(self, data):
        """Set the outputs of the real nodes (input layer: the sample)."""
        for node, value in zip(self.nodes, data):
            node.set_output(value)

    def calc_output(self):
        """Eq. 1/2 for every real node of the layer."""
        for node in self.nodes[:-1]:
            node.calc_output()

    def dump(self, file=None):
        """Print every node of the layer with its connections."""
        print(self, file=file if file is not None else sys.stdout)

    def __str__(self):
        return "\n".join([f"layer {self.layer_index}"] + [str(node) for node in self.nodes])

    def __repr__(self):
        return f"Layer({self.layer_index}, {len(self.nodes) - 1})"


class Connection:
    """A weighted edge from a node of one layer to a real node of the next.

    Parameters
    ----------
    upstream_node : Node
        The node the connection comes from (may be a :class:`ConstNode`: then ``weight`` is a bias).
    downstream_node : Node
        The node the connection goes to.
    weight : float
        The initial weight.

    Attributes
    ----------
    gradient : float
        The tutorial's gradient ``delta_downstream * a_upstream`` from the last
        :meth:`calc_gradient`. Note the sign: this is ``-dE/dw`` for ``E = 1/2 sum (t - y)^2``, the
        direction the update ``w += eta * gradient`` moves in.
    """

    def __init__(self, upstream_node, downstream_node, weight):
        self.upstream_node = upstream_node
        self.downstream_node = downstream_node
        self.weight = float(weight)
        self.gradient = 0.0

    def calc_gradient(self):
        """``gradient = downstream delta * upstream output`` (the tutorial's sign, ``-dE/dw``)."""
        self.gradient = self.downstream_node.delta * self.upstream_node.output

    def get_gradient(self):
        """Return the gradient of the last :meth:`calc_gradient` (tutorial's sign)."""
        return self.gradient

    def update_weight(self, rate):
        """Eq. 5: ``w += rate * delta * x``."""
        self.calc_gradient()
        self.weight += rate * self.gradient

    def __str__(self):
        up, down = self.upstream_node, self.downstream_node
        return (
            f"({up.layer_index}-{up.node_index})->({down.layer_index}-{down.node_index})"
            f" = {self.weight:.6g}"
        )

    def __repr__(self):
        return f"Connection({self})"


class Connections:
    """All connections of a network, in creation order."""

    def __init__(self):
        self.connections = []

    def add_connection(self, connection):
        """Append one connection."""
        self.connections.append(connection)

    def __iter__(self):
        return iter(self.connections)

    def __len__(self):
        return len(self.connections)

    def dump(self, file=None):
        """Print every connection, one per line."""
        print(self, file=file if file is not None else sys.stdout)

    def __str__(self):
        return "\n".join(str(conn) for conn in self.connections)


class Network(ReferenceNetwork):
    """The tutorial's fully connected sigmoid network built from node and connection objects.

    Parameters
    ----------
    layer_sizes : sequence of int
        Number of nodes per layer, input first, e.g. ``[784, 300, 10]`` (bias nodes not counted).
    seed : int or None
        Seed of the ``random.Random`` that draws the initial weights (biases included) uniformly
        from [-0.1, 0.1), one connection at a time: for each pair of layers, upstream node by
        upstream node (bias node last), downstream node by downstream node.

    Attributes
    ----------
    sizes : list of int
        The layer sizes.
    layers : list of Layer
        The layers, input first.
    connections : Connections
        Every connection of the network.
    """

    def __init__(self, layer_sizes, seed=None):
        self.sizes = check_sizes(layer_sizes)
        rng = random.Random(seed)
        self.layers = [Layer(i, n) for i, n in enumerate(self.sizes)]
        self.connections = Connections()
        for upper, lower in zip(self.layers[:-1], self.layers[1:]):
            for upstream_node in upper.nodes:
                for downstream_node in lower.nodes[:-1]:
                    conn = Connection(upstream_node, downstream_node, rng.uniform(-0.1, 0.1))
                    self.connections.add_connection(conn)
                    upstream_node.append_downstream_connection(conn)
                    downstream_node.append_upstream_connection(conn)

    # --- training -------------------------------------------------------------------------------
    # train(labels, data_set, rate, iteration), train_one_sample(label, sample, rate) and
    # gradient(x, t) come from ReferenceNetwork; they check the input and call the methods below.

    def _train_one(self, label, sample, rate):
        """One SGD step on one sample given as lists of Python floats: forward, deltas, update."""
        self._forward(sample)
        self._calc_delta(label)
        self.update_weight(rate)

    def calc_delta(self, label):
        """Eq. 3 on the output layer, then Eq. 4 on the hidden layers, back to front.

        Uses the outputs of the last :meth:`predict`; no weight changes.
        """
        self._calc_delta(self._label(label))

    def _calc_delta(self, label):
        """:meth:`calc_delta` for a list of Python floats."""
        for node, t in zip(self.layers[-1].nodes[:-1], label):
            node.calc_output_layer_delta(t)
        for layer in self.layers[-2:0:-1]:
            for node in layer.nodes:
                node.calc_hidden_layer_delta()

    def _downstream_connections(self):
        """Every connection, upstream layer by upstream layer, node by node."""
        for layer in self.layers[:-1]:
            for node in layer.nodes:
                yield from node.downstream

    def update_weight(self, rate):
        """Eq. 5 on every connection, from the deltas of the last :meth:`calc_delta`."""
        for conn in self._downstream_connections():
            conn.update_weight(rate)

    def calc_gradient(self):
        """Store ``delta * x`` in every connection's ``gradient`` (no weight changes)."""
        for conn in self._downstream_connections():
            conn.calc_gradient()

    def get_gradient(self, label, sample):
        """The tutorial's gradient for one sample: ``delta * x`` per connection.

        Runs forward on ``sample`` (the input ``x``), computes the deltas for ``label`` (the target
        vector ``t``) and stores each connection's ``gradient``; the weights do not change. Note the
        argument order (label first, as the tutorial's) and the sign: the result is ``-dE/dw`` for
        ``E = 1/2 sum (t - y)^2``, the step direction of Eq. 5. :meth:`gradient` gives ``+dE/dw``
        like the other engines.

        Returns
        -------
        list of (ndarray, ndarray)
            Per layer, ``(delta * x^T, delta)`` of shapes (n_out, n_in) and (n_out,): the
            connections' gradients laid out like :meth:`get_weights`.
        """
        self._forward(self._sample(sample))
        self._calc_delta(self._label(label))
        self.calc_gradient()
        return self._collect(lambda conn: conn.gradient)

    # --- forward --------------------------------------------------------------------------------

    def predict(self, sample):
        """Forward one sample ``x`` (array_like, (n_in,)) by Eq. 1/2 layer by layer; returns the
        outputs ``y``, float64 (n_out,)."""
        self._forward(self._sample(sample))
        return np.array([node.output for node in self.layers[-1].nodes[:-1]])

    def _forward(self, sample):
        """Forward a list of Python floats; the outputs stay in the nodes."""
        self.layers[0].set_output(sample)
        for layer in self.layers[1:]:
            layer.calc_output()

    # --- parameters -----------------------------------------------------------------------------

    def _collect(self, value):
        """Lay ``value(conn)`` out as ``(W, b)`` pairs, ``W[j, i]`` from node i to node j."""
        pairs = []
        for lower in self.layers[1:]:
            rows = [[value(conn) for conn in node.upstream] for node in lower.nodes[:-1]]
            table = np.array(rows, dtype=np.float64)  # last column: the bias node's connection
            pairs.append((table[:, :-1].copy(), table[:, -1].copy()))
        return pairs

    def get_weights(self):
        """The weights as ``(W, b)`` float64 copies per layer: ``W`` (n_out, n_in), ``W[j, i]``
        the weight from node i to node j, and ``b`` (n_out,), the weights from the bias node."""
        return self._collect(lambda conn: conn.weight)

    def set_weights(self, pairs):
        """Load ``(W, b)`` pairs as returned by :meth:`get_weights` (values are copied).

        Raises
        ------
        ValueError
            If the number of pairs, a shape, or a value (NaN, inf) does not fit.
        """
        checked = check_weight_pairs(self.sizes, pairs)
        for lower, (W, b) in zip(self.layers[1:], checked):
            W_rows, b_list = W.tolist(), b.tolist()
            for node, w_row, bias in zip(lower.nodes[:-1], W_rows, b_list):
                for conn, w in zip(node.upstream, w_row + [bias]):
                    conn.weight = w

    # --- display --------------------------------------------------------------------------------

    def dump(self, file=None):
        """Print every layer: each node's output and delta, and its connections' weights."""
        file = file if file is not None else sys.stdout
        for layer in self.layers:
            layer.dump(file=file)

    def __str__(self):
        return "\n".join(str(layer) for layer in self.layers)

    def __repr__(self):
        return f"Network(sizes={self.sizes}, engine='object', connections={len(self.connections)})"

    # --- input checking -------------------------------------------------------------------------

    @staticmethod
    def _values(array):
        """Checked input becomes (lists of) Python floats, the only numbers computed on here."""
        return array.tolist()
