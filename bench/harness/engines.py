"""The engines under test, each behind the same four calls.

An engine is built from float64 ``(W (n_out, n_in), b (n_out,))`` pairs ``init``; ``stage(n)``
prepares the first n training samples in its own input format (untimed), ``warm_up()`` runs
whatever is compiled or cached lazily (untimed), ``run()`` trains once over the staged samples
(the timed call), and ``weights()`` returns float64 ``(W, b)`` pairs for validation.

jitnet's engine is used only through its public API: ``Network(sizes, dtype=...)``,
``set_weights``, ``get_weights`` and ``train_epoch``.
"""

import time

import numpy as np

# The tutorial's learning rate, used by every benchmark.
RATE = 0.3


class Samples:
    """The training samples in every engine's input format; the targets are built once."""

    def __init__(self, train):
        self.train = train
        self._targets = {}

    def images(self, n):
        """The first n images as uint8 pixels, (n, 784)."""
        return self.train.images[:n]

    def inputs(self, n, dtype):
        """The first n images scaled to [0, 1], (n, 784)."""
        return self.train[:n].inputs(dtype)

    def targets(self, n, dtype):
        """The first n targets, 0.9 for the true class and 0.1 elsewhere, (n, 10)."""
        dtype = np.dtype(dtype)
        if dtype not in self._targets:
            self._targets[dtype] = self.train.targets(dtype)
        return self._targets[dtype][:n]


def layer_sizes(init):
    """Layer sizes, inputs first, of a list of ``(W, b)`` pairs."""
    return [init[0][0].shape[1]] + [W.shape[0] for W, _ in init]


class Engine:
    """Base of the engines: a name, a dtype, a thread count, and the four calls."""

    name = dtype = ""
    threads = 1

    def stage(self, n):
        raise NotImplementedError

    def warm_up(self):
        """Nothing to warm up unless an engine says otherwise."""

    def run(self):
        raise NotImplementedError

    def weights(self):
        raise NotImplementedError


class ObjectEngine(Engine):
    """The tutorial's object version: node and connection objects, Python floats."""

    name, dtype = "object (tutorial)", "float64"
    reference = "object"  # the engine name of jitnet.reference.make_network

    def __init__(self, init, samples):
        from jitnet.reference import make_network

        self.net = make_network(layer_sizes(init), engine=self.reference)
        self.net.set_weights(init)
        self.samples = samples

    def stage(self, n):
        # The tutorial's data: one list of Python floats per sample.
        self.X = self.samples.inputs(n, np.float64).tolist()
        self.T = self.samples.targets(n, np.float64).tolist()

    def run(self):
        self.net.train(self.T, self.X, RATE, 1)

    def weights(self):
        return self.net.get_weights()


class VectorizedEngine(ObjectEngine):
    """The tutorial's numpy version, one sample at a time."""

    name, dtype = "vectorized (numpy)", "float64"
    reference = "vectorized"

    def __init__(self, init, samples, blas_threads):
        super().__init__(init, samples)
        self.threads = blas_threads or 1

    def stage(self, n):
        self.X = self.samples.inputs(n, np.float64)
        self.T = self.samples.targets(n, np.float64)

    def warm_up(self):
        self.net.train(self.T[:8], self.X[:8], RATE, 1)


class JitEngine(Engine):
    """jitnet's compiled engine, fed uint8 images as in normal training."""

    def __init__(self, init, samples, dtype):
        import numba

        from jitnet import Network

        self.name, self.dtype = "jitnet", dtype
        self.threads = numba.get_num_threads()
        self.net = Network(layer_sizes(init), dtype=dtype)
        self.net.set_weights(init)
        self.samples = samples

    def stage(self, n):
        # uint8 images: the engine applies the 1/255 inside its kernel.
        self.X = self.samples.images(n)
        self.T = self.samples.targets(n, self.dtype)

    def warm_up(self):
        # Trains the timed network a little: the timed passes change its weights anyway.
        self.net.train_epoch(self.X[:8], self.T[:8], RATE)

    def run(self):
        self.net.train_epoch(self.X, self.T, RATE)

    def weights(self):
        return self.net.get_weights()


class TorchEngine(Engine):
    """PyTorch eager, batch size 1: the loop a PyTorch user writes for per-sample SGD.

    Sets ``torch.set_num_threads(1)`` for the rest of the process.
    """

    name, dtype = "pytorch (batch 1)", "float32"

    def __init__(self, init, samples):
        import torch

        torch.set_num_threads(1)
        self.torch = torch
        self.threads = torch.get_num_threads()
        layers = []
        for W, b in init:
            linear = torch.nn.Linear(W.shape[1], W.shape[0])
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(np.asarray(W, np.float32)))
                linear.bias.copy_(torch.from_numpy(np.asarray(b, np.float32)))
            layers += [linear, torch.nn.Sigmoid()]
        self.model = torch.nn.Sequential(*layers)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=RATE)
        self.samples = samples

    def stage(self, n):
        self.X = self.torch.from_numpy(self.samples.inputs(n, np.float32))
        self.T = self.torch.from_numpy(np.ascontiguousarray(self.samples.targets(n, np.float32)))

    def _train(self, X, T):
        model, optimizer = self.model, self.optimizer
        for x, t in zip(X, T):
            optimizer.zero_grad()
            loss = 0.5 * ((model(x) - t) ** 2).sum()
            loss.backward()
            optimizer.step()

    def warm_up(self):
        self._train(self.X[:8], self.T[:8])

    def run(self):
        self._train(self.X, self.T)

    def weights(self):
        linears = [m for m in self.model if isinstance(m, self.torch.nn.Linear)]
        return [(m.weight.detach().numpy().astype(np.float64),
                 m.bias.detach().numpy().astype(np.float64)) for m in linears]


class JaxEngine(Engine):
    """JAX: one jitted ``lax.scan`` over the samples, each step the per-sample SGD update.

    ``compile_s`` holds the seconds of the compile for the staged shape, after ``warm_up``.
    """

    name, dtype = "jax (jit lax.scan)", "float32"

    def __init__(self, init, samples, single_thread):
        import jax
        import jax.numpy as jnp

        self.jax, self.jnp = jax, jnp
        self.threads = 1 if single_thread else "default"
        self.params = [(jnp.asarray(W, jnp.float32), jnp.asarray(b, jnp.float32))
                       for W, b in init]

        def loss(params, x, t):
            a = x
            for W, b in params:
                a = jax.nn.sigmoid(W @ a + b)
            return 0.5 * jnp.sum((t - a) ** 2)

        grad = jax.grad(loss)

        def step(params, xt):
            g = grad(params, *xt)
            return jax.tree_util.tree_map(lambda p, d: p - RATE * d, params, g), None

        self._epoch = jax.jit(lambda params, X, T: jax.lax.scan(step, params, (X, T))[0])
        self.samples = samples
        self.compile_s = None

    def stage(self, n):
        self.X = self.jnp.asarray(self.samples.inputs(n, np.float32))
        self.T = self.jnp.asarray(self.samples.targets(n, np.float32))

    def warm_up(self):
        # jit specialises on the number of samples: compile for exactly the staged shape.
        start = time.perf_counter()
        self.jax.block_until_ready(self._epoch(self.params, self.X, self.T))
        self.compile_s = time.perf_counter() - start

    def run(self):
        self.params = self.jax.block_until_ready(self._epoch(self.params, self.X, self.T))

    def weights(self):
        return [(np.asarray(W, np.float64), np.asarray(b, np.float64)) for W, b in self.params]


def _importable(name):
    import importlib.util

    return importlib.util.find_spec(name) is not None


def engine_builders(init, samples, blas_threads, frameworks=True, jax_single_thread=False):
    """Every engine that can run here, keyed by a short name, and notes on those left out.

    Parameters
    ----------
    init : list of (ndarray, ndarray)
        float64 ``(W, b)`` pairs every engine starts from.
    samples : Samples
        The training samples.
    blas_threads : int or None
        Threads of numpy's BLAS, reported for the vectorized engine.
    frameworks : bool
        Include PyTorch and JAX when they are importable.
    jax_single_thread : bool
        Whether XLA was limited to one thread before JAX started.

    Returns
    -------
    builders : dict
        ``key -> (build, gating)``: ``build()`` makes a fresh engine; ``gating`` says whether a
        validation failure of that engine stops the benchmark (this project's engines) or is only
        reported (the frameworks). The first entry is the object version, the anchor.
    notes : list of str
    """
    builders = {
        "object": (lambda: ObjectEngine(init, samples), True),
        "vectorized": (lambda: VectorizedEngine(init, samples, blas_threads), True),
        "jit64": (lambda: JitEngine(init, samples, "float64"), True),
        "jit32": (lambda: JitEngine(init, samples, "float32"), True),
    }
    notes = []
    if not frameworks:
        return builders, ["PyTorch and JAX left out (--no-frameworks)."]
    if _importable("torch"):
        builders["torch"] = (lambda: TorchEngine(init, samples), False)
    else:
        notes.append("PyTorch not importable: skipped (`pip install torch` to include it).")
    if _importable("jax"):
        builders["jax"] = (lambda: JaxEngine(init, samples, jax_single_thread), False)
        if not jax_single_thread:
            notes.append("JAX was imported before the benchmark could limit XLA to one thread.")
    else:
        notes.append("JAX not importable: skipped (`pip install jax jaxlib` to include it).")
    return builders, notes
