"""Checkpoints and model files: what a run keeps on disk, and the strict reader of ``--resume``.

A checkpoint is one ``.npz`` file, written atomically (temporary file, fsync, rename):

* ``net/<key>``: the network after the last completed epoch (``Network.to_arrays()``);
* ``best/<key>``: the best network so far (absent before the first evaluation);
* ``velocity``: momentum's velocity after the last completed epoch, laid out like the network's
  ``params`` (absent without momentum), so that a resumed run with momentum is exact;
* ``meta``: UTF-8 JSON as a ``uint8`` array: ``format``, ``version``, ``config``, ``data`` (sizes,
  the images' shape and fingerprint), ``epoch``, ``rng_state`` (the shuffling generator's state),
  ``best_epoch``, ``best_error``, ``bad_evals``, ``records`` (one per epoch), ``train_seconds``,
  ``eval_seconds``, ``elapsed_seconds`` and ``stop_reason``.

It always describes the end of a completed epoch, so a resumed run draws the same permutations
and performs the same float operations as one that ran straight through.

A model file is ``Network.to_arrays()`` plus ``jitnet_train_info``, JSON saying how inputs were
scaled and how it was trained; ``Network.load`` reads it as a plain model.

Both are read through :class:`jitnet.io.npzfile.NpzArchive`: the archive's directory and every
array's header are checked first, then the JSON description, then each network's declared
shapes against the configuration, and only then are the parameters read. Both networks must be
what the configuration names (sizes, dtype, activation, loss, init, input scale): a resume
trains exactly the network its ``config.json`` describes. ``Network.load`` reads a checkpoint's
current network without this reader (:mod:`jitnet.engine.model_file`).
"""

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from jitnet.engine import model_file
from jitnet.io.atomic import atomic_save_npz, display_path
from jitnet.engine.network import ModelFileError, Network
from jitnet.io.npzfile import NpzArchive
from jitnet.training.config import (
    TrainConfig, checked, count, fraction, number, optional_image_shape, optional_positive_int,
    positive_int, positive_number, shown,
)
from jitnet.training.data import (
    checkpoint_preprocessing, model_data_info, network_sizes, taking_raw_images,
)
from jitnet.training.errors import CheckpointError, TrainingError, one_line

# The format and the description's key, as Network.load reads a checkpoint's network too.
CHECKPOINT_FORMAT = model_file.CHECKPOINT_FORMAT
CHECKPOINT_VERSION = model_file.CHECKPOINT_VERSION
META_KEY = model_file.CHECKPOINT_KEY
VELOCITY_KEY = "velocity"
MODEL_INFO_KEY = "jitnet_train_info"
STOP_REASONS = ("epochs", "patience")


@dataclass
class TrainState:
    """A run at the end of a completed epoch: everything a checkpoint holds.

    ``net`` and ``best`` are snapshots: the loop trains a copy of ``net`` and never changes
    either of them.
    """

    config: TrainConfig
    data: dict  # Splits.info of the data it is trained on
    epoch: int
    rng_state: dict  # bit_generator.state of the shuffling generator
    net: Network
    best: Network = None
    best_epoch: int = None
    best_error: float = None
    bad_evals: int = 0
    records: list = field(default_factory=list)  # one dict per epoch, see jitnet.training.loop
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    elapsed_seconds: float = 0.0
    stop_reason: str = None

    @property
    def history(self):
        """The records of the epochs that ended with an evaluation."""
        key = self.config.error_key
        return [record for record in self.records if key in record]

    @property
    def losses(self):
        """Every epoch's mean loss."""
        return [record["loss"] for record in self.records]


def _json_array(obj):
    return np.frombuffer(json.dumps(obj).encode("utf-8"), dtype=np.uint8)


def save_checkpoint(path, state):
    """Write ``state`` to ``path`` atomically (the previous file stays intact until the rename)."""
    arrays = {f"{model_file.CHECKPOINT_NET}{k}": v for k, v in state.net.to_arrays().items()}
    if state.best is not None:
        arrays.update({f"best/{k}": v for k, v in state.best.to_arrays().items()})
    if state.net.velocity is not None:
        arrays[VELOCITY_KEY] = state.net.velocity
    arrays[META_KEY] = _json_array({
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "config": state.config.to_dict(),
        "data": state.data,
        "epoch": state.epoch,
        "rng_state": state.rng_state,
        "best_epoch": state.best_epoch,
        "best_error": state.best_error,
        "bad_evals": state.bad_evals,
        "records": state.records,
        "train_seconds": state.train_seconds,
        "eval_seconds": state.eval_seconds,
        "elapsed_seconds": state.elapsed_seconds,
        "stop_reason": state.stop_reason,
    })
    atomic_save_npz(path, arrays)


def open_archive(path, what):
    """The ``.npz`` at ``path`` as :class:`~jitnet.engine.model_file.ArchiveArrays` over an open
    :class:`~jitnet.io.npzfile.NpzArchive` (close its ``archive``), or a one-line CheckpointError
    naming it: missing, not a regular file, not an ``.npz``, or an array that is damaged,
    pickled or larger than the file holds."""
    text = os.fspath(path)
    if isinstance(text, str) and "\0" not in text and not os.path.lexists(text):
        raise CheckpointError(f"{what} {display_path(text)} does not exist")
    return model_file.ArchiveArrays(NpzArchive(path, CheckpointError, what=what))


def _json(arrays, key, what):
    """The JSON object stored as bytes in ``arrays[key]`` (its header checked before it is
    read); TrainingError if it is not one."""
    try:
        return model_file.json_object(arrays, key, model_file.MAX_META_BYTES)
    except ValueError as error:
        raise TrainingError(f"its {what} {error}") from None


def _field(meta, name, check):
    if name not in meta:
        raise TrainingError(f"missing field {name!r}")
    return checked(name, meta[name], check)


def _data_info(value):
    if not isinstance(value, dict):
        raise ValueError("a JSON object")
    info = {key: _field(value, key, count)
            for key in ("n_inputs", "n_classes", "n_train", "n_val", "n_test")}
    fingerprint = value.get("fingerprint")
    if not isinstance(fingerprint, str):
        raise ValueError("a data description with a fingerprint")
    info["fingerprint"] = fingerprint
    names = value.get("class_names")
    if names is not None:
        if not isinstance(names, list) or len(names) != info["n_classes"] or not all(
                isinstance(name, str) and name for name in names) or len(set(names)) < len(names):
            raise ValueError(f"a data description with {info['n_classes']} distinct class names")
        info["class_names"] = names
    if "input_scale" in value:
        info["input_scale"] = checked("data.input_scale", value["input_scale"], positive_number)
    if value.get("image_shape") is not None:
        info["image_shape"] = list(checked("data.image_shape", value["image_shape"],
                                           optional_image_shape))
    for key in ("source", "split"):  # descriptions, compared and shown, never computed with
        if value.get(key) is not None:
            if not isinstance(value[key], dict):
                raise ValueError(f"a data description whose {key} is a JSON object")
            info[key] = value[key]
    return info


def _records(value):
    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        raise ValueError("a list of epoch records")
    for epoch, record in enumerate(value, 1):
        if checked(f"records[{epoch - 1}].epoch", record.get("epoch"), positive_int) != epoch:
            raise ValueError(f"a list of epoch records numbered from 1 (record {epoch})")
        checked(f"records[{epoch - 1}].loss", record.get("loss"), number)
        for key in ("val_error", "test_error"):
            if key in record:
                checked(f"records[{epoch - 1}].{key}", record[key], fraction)
    return value


def _optional(check):
    return lambda value: None if value is None else check(value)


def _stop_reason(value):
    if value is not None and value not in STOP_REASONS:
        raise ValueError(" or ".join(map(json.dumps, STOP_REASONS)) + " or null")
    return value


def generator_from_state(rng_state):
    """A Generator in ``rng_state``; ValueError when it is not a valid PCG64 state."""
    rng = np.random.Generator(np.random.PCG64())
    try:
        rng.bit_generator.state = rng_state
    except (TypeError, ValueError, KeyError, OverflowError, AttributeError):
        raise ValueError("a PCG64 generator state") from None
    return rng


def _rng_state(value):
    generator_from_state(value)
    return value


def _read_model(arrays, source):
    """model_file.read_model for a Network, its errors as one-line CheckpointErrors (a damaged
    array already raises one, naming the file)."""
    try:
        return model_file.read_model(Network, arrays, source)
    except ModelFileError as exc:
        raise CheckpointError(str(exc)) from None


def _network(arrays, prefix, sizes, config, path):
    """The network stored under ``prefix``, after checking from the headers that its shapes are
    ``sizes`` (before anything is read or allocated); its recipe must be ``config``'s."""
    arrays = arrays.prefixed(prefix)
    what = {"net/": "network", "best/": "best network"}[prefix]
    wrong_sizes = TrainingError(f"its {what} is not a {'-'.join(map(str, sizes))} network")
    if "sizes" not in arrays:
        raise wrong_sizes
    shape, stored_type = arrays.describe("sizes")
    if (shape != (len(sizes),) or stored_type.kind not in "iu"
            or arrays["sizes"].tolist() != sizes):
        raise wrong_sizes
    for layer, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        for key, shape in ((f"W{layer}", (n_out, n_in)), (f"b{layer}", (n_out,))):
            if key not in arrays or arrays.describe(key)[0] != shape:
                raise TrainingError(f"its {what} has no {key} of shape {shape}")
    net, _ = _read_model(arrays, f"checkpoint {display_path(path)} ({what})")
    for name, stored in (("dtype", net.dtype.name), ("activation", net.activation),
                         ("loss", net.loss), ("init", net.init)):
        if stored != getattr(config, name):
            raise TrainingError(f"its {what} is {stored} ({name}), its configuration says "
                                f"{getattr(config, name)}")
    return net


def _state_from_arrays(arrays, path):
    """The TrainState of a checkpoint's arrays; every field checked once."""
    if META_KEY not in arrays:
        raise CheckpointError(f"{path} is not a jitnet training checkpoint (no {META_KEY!r})")
    try:
        meta = _json(arrays, META_KEY, "description")
        if meta.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{path} is not a jitnet training checkpoint")
        if meta.get("version") != CHECKPOINT_VERSION:
            raise CheckpointError(
                f"checkpoint {path} has format version {shown(meta.get('version'))}; this "
                f"jitnet reads version {CHECKPOINT_VERSION}"
            )
        config = TrainConfig.from_dict(_field(meta, "config", lambda v: v))
        data = _field(meta, "data", _data_info)
        sizes = network_sizes(config, data)
        state = TrainState(
            config=config,
            data=data,
            epoch=_field(meta, "epoch", count),
            rng_state=_field(meta, "rng_state", _rng_state),
            net=_network(arrays, "net/", sizes, config, path),
            best=_network(arrays, "best/", sizes, config, path)
            if any(k.startswith("best/") for k in arrays) else None,
            best_epoch=_field(meta, "best_epoch", _optional(optional_positive_int)),
            best_error=_field(meta, "best_error", _optional(fraction)),
            bad_evals=_field(meta, "bad_evals", count),
            records=_field(meta, "records", _records),
            train_seconds=_field(meta, "train_seconds", number),
            eval_seconds=_field(meta, "eval_seconds", number),
            elapsed_seconds=_field(meta, "elapsed_seconds", number),
            stop_reason=_field(meta, "stop_reason", _stop_reason),
        )
        if VELOCITY_KEY in arrays:
            try:
                state.net.velocity = arrays[VELOCITY_KEY]
            except (ValueError, TypeError) as exc:
                raise TrainingError(f"its velocity does not fit its network ({one_line(exc)})")
        _check_consistency(state)
    except CheckpointError:
        raise
    except TrainingError as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt: {exc}") from None
    return state


def _check_consistency(state):
    """Fields that must agree with each other; a TrainingError says which do not. The networks
    then carry the configuration's input scale (a checkpoint holds everything to use them)."""
    if state.epoch > state.config.epochs:
        raise TrainingError(f"epoch {state.epoch} is beyond its --epochs {state.config.epochs}")
    if len(state.records) != state.epoch:
        raise TrainingError(f"{len(state.records)} epoch records for epoch {state.epoch}")
    best = (state.best is not None, state.best_epoch is not None, state.best_error is not None)
    if any(best) and not all(best):
        raise TrainingError("its best network, best epoch and best error do not go together")
    if state.best_epoch is not None and state.best_epoch > state.epoch:
        raise TrainingError(f"best epoch {state.best_epoch} is after epoch {state.epoch}")
    scale = state.data.get("input_scale", state.config.input_scale)
    names = state.data.get("class_names")
    standardize = state.config.standardize
    for net in (state.net, state.best):
        if net is None:
            continue
        if net.input_scale not in (None, scale):
            raise TrainingError(f"its network's input scale {net.input_scale:g} is not its "
                                f"configuration's ({'1/255' if scale is None else scale})")
        net.input_scale = scale
        if net.class_names != (None if names is None else tuple(names)):
            raise TrainingError("its network's class names are not its data's")
        if (net.standardization is not None) != standardize:
            raise TrainingError(f"its network {'lacks' if standardize else 'has'} the "
                                f"standardization its configuration "
                                f"{'asks for' if standardize else 'does not'}")


def load_checkpoint(path):
    """Read and check a checkpoint.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    TrainState

    Raises
    ------
    CheckpointError
        One line naming ``path`` when the file is missing, truncated, not a jitnet checkpoint,
        or holds a field of the wrong type or arrays that do not fit its configuration.
    """
    path = Path(path)
    arrays = open_archive(path, "checkpoint")
    with arrays.archive:
        return _state_from_arrays(arrays, display_path(path))


def save_model(path, net, info):
    """Save a model atomically: the network's arrays plus ``info`` as JSON.

    Parameters
    ----------
    path : str or os.PathLike
    net : jitnet.Network
    info : dict
        JSON-ready; ``input_scale`` (None or 1.0) is what :func:`load_model` hands back.
    """
    arrays = net.to_arrays()
    arrays[MODEL_INFO_KEY] = _json_array(info)
    atomic_save_npz(path, arrays)


def load_model(path):
    """Load a model: a ``model.npz`` written by a run or by ``Network.save``, a run folder (its
    ``model.npz``), or a checkpoint (its current network).

    Returns
    -------
    net : jitnet.Network
    info : dict
        The saved description (``input_scale`` among others); empty for a ``Network.save`` file.

    Raises
    ------
    CheckpointError
        One line naming the file.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "model.npz"
    arrays = open_archive(path, "model file")
    with arrays.archive:
        if META_KEY in arrays:
            state = _state_from_arrays(arrays, display_path(path))
            info = {"input_scale": state.data.get("input_scale", state.config.input_scale),
                    "config": state.config.to_dict(), "epoch": state.epoch, "checkpoint": True,
                    **model_data_info(state.data)}
            prep = checkpoint_preprocessing(state.config, state.net.n_inputs,
                                            state.data.get("image_shape"))
            return taking_raw_images(state.net, prep), info
        return _read_model(arrays, arrays.where)
