"""A committee of networks: the average of its members' outputs, as Meier et al. (2011) combine
their 25 one-hidden-layer nets.

::

    committee = jitnet.Committee([net_a, net_b, net_c])
    committee.predict(X)            # (N, n_out): the members' outputs averaged
    committee.classify(X)           # (N,): the largest averaged output
    committee.evaluate(X, labels)   # error rate of the committee
    jitnet.Committee.load("committees/first")   # a folder written by ``jitnet committee``

The members must agree on what is averaged: the number of inputs, the number and the kind of
outputs (their output activation: sigmoid, tanh, scaled tanh or softmax; averaging softmax
probabilities with sigmoid outputs would weigh the members by their scale) and how they scale
inputs (:attr:`jitnet.Network.input_scale`). They may differ in everything else: hidden layers,
hidden activation, dtype, training.

The committee folder
--------------------
``committee.json`` (:data:`FILE_NAME`) describes a committee; this module reads only the keys that
define it, and leaves the rest (errors, options, commands: ``jitnet committee`` writes them) to
its writers::

    {"format": "jitnet-committee", "version": 1, "rule": "mean",
     "members": [{"model": "trials/4c0f2a9e81b7/model.npz", ...}, ...], ...}

A member's ``model`` is a model file or a run folder (its best model), relative to the folder of
``committee.json`` unless absolute; :meth:`Committee.save` writes ``member-1.npz``, ... beside it.
"""

import json
import os
from pathlib import Path

import numpy as np

from jitnet.engine.checks import check_inputs, check_labels
from jitnet.engine.model_file import ModelFileError
from jitnet.io.atomic import atomic_write_bytes, display_path

FILE_NAME = "committee.json"
FORMAT = "jitnet-committee"
VERSION = 1
#: The combination rule: every member's outputs averaged with equal weights, then the largest.
RULE = "mean"
#: Members a committee file may name (a bound on what a damaged or hostile file can ask for).
MAX_MEMBERS = 1000
#: The largest committee.json read (a real one is a few KB per member).
MAX_FILE_BYTES = 16 * 2**20


class CommitteeFileError(ModelFileError):
    """A committee folder or ``committee.json`` that cannot be used; one line naming the file."""


def _describe_sizes(net):
    return "-".join(map(str, net.sizes))


class Committee:
    """Networks whose outputs are averaged.

    Parameters
    ----------
    networks : sequence of jitnet.Network
        The members, at least one. They must have the same number of inputs, the same number
        and kind of outputs (``output_activation``) and the same ``input_scale``.

    Attributes
    ----------
    members : tuple of jitnet.Network
        The networks themselves (not copies): a model export, for one, handles each member as a
        network and the committee as their mean.
    n_inputs, n_outputs : int
    output_activation : str
        The members' output activation (``softmax`` for cross-entropy networks).
    loss : str
        ``cross_entropy`` for softmax outputs, else ``squared``.
    input_scale : float or None
        The members' input scale (None: 1/255 for uint8 images).
    dtype : numpy.dtype
        Of the averaged outputs: the members' dtype, or float64 when they differ. The average
        itself is always summed in float64.

    Raises
    ------
    ValueError
        One line: no networks, a member that is not a Network, or members that disagree.
    """

    def __init__(self, networks):
        from jitnet.engine.network import Network

        members = tuple(networks)
        if not members:
            raise ValueError("a committee needs at least one network")
        for k, net in enumerate(members, 1):
            if not isinstance(net, Network):
                raise ValueError(f"committee member {k} is a {type(net).__name__}, not a "
                                 f"jitnet.Network")
        first = members[0]
        for k, net in enumerate(members[1:], 2):
            for what, mine, theirs in (
                ("inputs", net.n_inputs, first.n_inputs),
                ("outputs", net.n_outputs, first.n_outputs),
                ("output activation", net.output_activation, first.output_activation),
                ("input scale", net.input_scale, first.input_scale),
                ("class names", net.class_names, first.class_names),
            ):
                if mine != theirs:
                    raise ValueError(
                        f"committee member {k} ({_describe_sizes(net)}) has {what} {mine!r} "
                        f"but member 1 ({_describe_sizes(first)}) has {theirs!r}: members must "
                        f"agree on inputs, outputs and input scale"
                    )
        self._members = members
        self._dtype = common_dtype(members)

    # -- what the members share -----------------------------------------------------------

    members = property(lambda self: self._members, doc="The member networks (a tuple).")
    n_inputs = property(lambda self: self._members[0].n_inputs, doc="Inputs of every member.")
    n_outputs = property(lambda self: self._members[0].n_outputs, doc="Outputs of every member.")
    output_activation = property(lambda self: self._members[0].output_activation,
                                 doc="The members' output activation.")
    loss = property(lambda self: self._members[0].loss,
                    doc="The members' loss (it follows from the output activation).")
    input_scale = property(lambda self: self._members[0].input_scale,
                           doc="The members' input scale.")
    class_names = property(lambda self: self._members[0].class_names,
                           doc="The members' class names (None: the outputs' indices).")
    # Each member standardises its own inputs (its training split's statistics) in predict.
    standardization = None
    dtype = property(lambda self: self._dtype, doc="The dtype of the averaged outputs.")
    rule = RULE

    def __len__(self):
        return len(self._members)

    def __iter__(self):
        return iter(self._members)

    def __getitem__(self, index):
        return self._members[index]

    def describe(self):
        """The members in a few words: ``784-800-10 relu float32 x3`` or one entry per kind."""
        kinds = {}
        for net in self._members:
            kind = f"{_describe_sizes(net)} {net.activation} {net.dtype.name}"
            kinds[kind] = kinds.get(kind, 0) + 1
        return ", ".join(f"{kind} x{count}" if count > 1 else kind
                         for kind, count in kinds.items())

    def __repr__(self):
        return f"Committee({len(self)} members: {self.describe()}; outputs {self.rule})"

    def to_onnx(self, path=None, metadata=None):
        """The committee as one checked ONNX graph: every member on the same input, their outputs
        averaged (``Sum``, then ``Mul`` by 1/K) and ``label`` the largest average, in
        :attr:`dtype` (see :meth:`jitnet.Network.to_onnx`). Needs ``pip install "jitnet[onnx]"``."""
        from jitnet.engine import codes
        from jitnet.engine.preprocess import refuse_export
        from jitnet.io import onnx_export

        refuse_export(self._members)
        first, *others = self._members
        scale = self.input_scale if self.input_scale is not None else 1 / 255
        return onnx_export.build_model(
            first.get_weights(), first.activation, self.output_activation, dtype=self._dtype,
            input_scale=scale, path=path, standardization=first.standardization,
            class_names=self.class_names,
            members=[(net.get_weights(), net.activation, net.standardization) for net in others],
            metadata={"loss": self.loss, "committee": f"{len(self)} members, {self.rule}",
                      **(metadata or {})},
            scaled_tanh=(codes.SCALED_TANH_AMPLITUDE, codes.SCALED_TANH_SLOPE))

    # -- inference --------------------------------------------------------------------------

    def member_outputs(self, X, scale=None):
        """Every member's outputs: (K, N, n_out) for a batch (N, n_in), (K, n_out) for one
        sample; each in its member's dtype, stacked as float64."""
        return np.stack([np.asarray(net.predict(X, scale), np.float64) for net in self._members])

    def predict(self, X, scale=None):
        """The members' outputs averaged: (N, n_in) -> (N, n_out), or (n_in,) -> (n_out,).

        ``scale`` is passed to every member (None: their ``input_scale``).
        """
        return average([net.predict(X, scale) for net in self._members], self._dtype)

    def classify(self, X, scale=None):
        """Index of the largest averaged output (the first of equal ones) for each sample."""
        return np.argmax(self.predict(X, scale), axis=-1)

    def evaluate(self, X, labels, scale=None):
        """Error rate in [0, 1] of the committee's classes against ``labels`` (N,)."""
        X, _ = check_inputs(X, self.n_inputs)
        labels = check_labels(labels, X.shape[0], self.n_outputs)
        if X.shape[0] == 0:
            raise ValueError("cannot evaluate on zero samples")
        return np.count_nonzero(self.classify(X, scale) != labels) / X.shape[0]

    # -- files ------------------------------------------------------------------------------

    def save(self, folder):
        """Write the committee to ``folder``: ``member-1.npz``, ... (model files) and
        ``committee.json`` naming them. :meth:`load` reads it back. Returns the JSON's path."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        members = []
        for k, net in enumerate(self._members, 1):
            net.save(folder / f"member-{k}.npz")
            members.append({"model": f"member-{k}.npz", "sizes": net.sizes,
                            "activation": net.activation, "dtype": net.dtype.name})
        path = folder / FILE_NAME
        write_file(path, members)
        return path

    @classmethod
    def load(cls, path):
        """Read a committee: a folder holding ``committee.json`` (``jitnet committee``'s
        ``--out``, or :meth:`save`'s folder), or that file itself.

        Raises
        ------
        CommitteeFileError
            One line naming the file: unreadable, not a committee file, a member whose model
            cannot be loaded, members that disagree.
        """
        from jitnet.engine.network import Network

        path, models = read_file(path)
        networks = []
        for k, model in enumerate(models, 1):
            try:
                networks.append(Network.load(model))
            except ModelFileError as exc:
                raise CommitteeFileError(f"{display_path(path)}: member {k}: {exc}") from None
        try:
            return cls(networks)
        except ValueError as exc:
            raise CommitteeFileError(f"{display_path(path)}: {exc}") from None


def common_dtype(networks):
    """The dtype of a committee's averaged outputs: the members' one, or float64 when they
    differ."""
    dtypes = {net.dtype for net in networks}
    return dtypes.pop() if len(dtypes) == 1 else np.dtype(np.float64)


def average(outputs, dtype=np.float64):
    """The committee's rule on its members' outputs (arrays of one shape): their sum in float64,
    member by member in order, divided by their number, in ``dtype``."""
    total = None
    for y in outputs:
        y = np.asarray(y, np.float64)
        total = y.copy() if total is None else total + y
    return (total / len(outputs)).astype(dtype, copy=False)


def is_committee(path):
    """Whether ``path`` is a committee folder (it holds ``committee.json``) or that file."""
    path = Path(path)
    return (path.is_dir() and (path / FILE_NAME).is_file()) or \
        (path.name == FILE_NAME and path.is_file())


def write_file(path, members, **extra):
    """Write ``committee.json`` at ``path`` atomically: the format's keys, ``members`` (dicts,
    each with its ``model`` path as :func:`read_file` resolves it) and any ``extra`` keys."""
    document = {"format": FORMAT, "version": VERSION, "rule": RULE,
                "rule_text": "every member's outputs averaged with equal weights; the class is "
                             "the largest average", "members": members, **extra}
    atomic_write_bytes(path, (json.dumps(document, indent=2) + "\n").encode("utf-8"))


def read_document(path):
    """``(path of committee.json, its checked JSON object)`` of a committee folder or file.

    Raises
    ------
    CommitteeFileError
        One line naming the file.
    """
    path = Path(path)
    if path.is_dir():
        path = path / FILE_NAME
    where = display_path(path)

    def fail(problem):
        raise CommitteeFileError(f"committee file {where}: {problem}")

    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        fail(f"cannot read it ({exc.strerror or exc})")
    if len(raw) > MAX_FILE_BYTES:
        fail(f"larger than {MAX_FILE_BYTES // 2**20} MB, not a committee file")
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        fail(f"not valid JSON ({' '.join(str(exc).split())})")
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        fail(f'not a committee file (no "format": "{FORMAT}")')
    version = document.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        fail(f"bad version {version!r}")
    if version > VERSION:
        fail(f"version {version} is from a newer jitnet (this one reads {VERSION})")
    if document.get("rule") != RULE:
        fail(f"unknown rule {document.get('rule')!r} (this jitnet averages: {RULE!r})")
    members = document.get("members")
    if not isinstance(members, list) or not members:
        fail('"members" must be a non-empty list')
    if len(members) > MAX_MEMBERS:
        fail(f"{len(members)} members, more than {MAX_MEMBERS}")
    for k, member in enumerate(members, 1):
        model = member.get("model") if isinstance(member, dict) else None
        if not isinstance(model, str) or not model or "\0" in model:
            fail(f'member {k} has no "model" path')
    return path, document


def read_file(path):
    """``(path of committee.json, [model path of each member])``, the paths resolved against
    the file's folder. Raises CommitteeFileError (see :func:`read_document`)."""
    path, document = read_document(path)
    folder = path.parent
    return path, [Path(os.path.join(folder, m["model"])) for m in document["members"]]
