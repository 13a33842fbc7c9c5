"""Committees: K networks trained as sweep trials on Dask, their outputs averaged.

A committee's members are trials (:func:`jitnet.sweep.run_trial`) of one set of ``train``
options: member ``i`` (from 0) has seed ``i`` and, with ``vary``, its own value of the varied
options. They run on the sweep's cluster (a LocalCluster of single-thread workers, or
``scheduler``), each in ``OUT/trials/<key>/``, so a rerun of the same command skips the members
that are done and resumes the others from their checkpoints, and a member lost with its worker
is run again from its checkpoint. When they are done, :mod:`jitnet.sweep.committee_report`
averages their outputs (:class:`jitnet.Committee`) on the validation and test sets and writes
``committee.json``, ``committee.md`` and ``committee.png``.

``vary`` (``--vary``; members differ by seed in any case)
---------------------------------------------------------
* ``NAME=V1,V2,...``: any option a sweep takes, values in the sweep's syntax (``hidden=600,800,
  1000``, ``elastic-alpha=30,34,38``, ``recipe=simard2003,ciresan2010``); member ``i`` takes
  value ``i mod n``.
* ``hidden``: every hidden layer scaled by :data:`LADDER` ``[i mod 3]`` (800: 800, 680, 920).
* ``distortion``: the distortion's strength scaled by the same factors: ``elastic_alpha`` for
  an elastic part, the ``rotate``, ``scale``, ``shear`` and ``translate`` ranges for an affine
  one (the field's smoothness, ``elastic_sigma``, stays).
* ``preprocess``: member ``i`` preprocesses its digits as :data:`PREPROCESS_LADDER` ``[i mod
  n]`` says (deslanted, then stretched to different widths), as Meier et al. (2011) made their
  members err on different digits; each member's model carries its preprocessing, so the
  committee averages members that each take the raw images.

Member ``i``'s options depend on ``i`` alone, never on the number of members, so a larger
committee in the same folder (``members=7`` after 5) reuses the members already trained; member
0 of a ladder is the unvaried configuration. Options that decide the data or the input scale
(``data``, ``train_limit``, ``test_limit``, ``validation``, ``raw_pixels``) cannot vary: the
members are evaluated on one validation and one test set, and averaged inputs must be scaled
alike.
"""

from __future__ import annotations

from pathlib import Path

from jitnet.sweep.runner import SweepReporter, run_jobs
from jitnet.sweep.space import SWEEP_KEYS, Range, parse_space
from jitnet.sweep.trial import SweepError, full_options, trial_key

#: The factor of member ``i`` for the ``hidden`` and ``distortion`` ladders is ``LADDER[i % 3]``.
LADDER = (1.0, 0.85, 1.15)
#: The ``preprocess`` ladder: member ``i`` takes entry ``i mod 6``.
PREPROCESS_LADDER = ("deslant", "deslant+width:14", "deslant+width:18", "none",
                     "deslant+width:12", "deslant+width:16")
SHORTHANDS = ("hidden", "distortion", "preprocess")
#: Options every member must share: they decide the data and how inputs are scaled.
SHARED = ("data", "train_limit", "test_limit", "validation", "raw_pixels")
MAX_MEMBERS = 100
#: The upper ends of the affine ranges (a ladder's larger factor is clipped below them).
_AFFINE_LIMITS = {"rotate": 180.0, "scale": 0.99, "shear": 89.0, "translate": float("inf")}
_DISTORTION_OPTIONS = ("elastic_alpha", *_AFFINE_LIMITS)


def _flag(name):
    return "--" + name.replace("_", "-")


def _single(space):
    """The one value of each option of a parsed space; SweepError for a list or range."""
    base = {}
    for name, items in space.dims.items():
        if len(items) != 1 or isinstance(items[0], (Range, tuple)):
            raise SweepError(f"{_flag(name)}: the members of a committee share every option "
                             f"(one value each); to give them different values use --vary "
                             f"{name.replace('_', '-')}=V1,V2,...")
        base[name] = items[0]
    return base


def parse_options(options):
    """The members' shared options from command-line texts (the sweep's syntax, one value
    each): ``{"recipe": "simard2003", "epochs": "10"}`` -> ``{"recipe": "simard2003",
    "epochs": 10}``. Raises SweepError."""
    names = {str(key).lstrip("-").replace("-", "_") for key in options}
    for name in sorted(names & {*SWEEP_KEYS, "seed"}):
        raise SweepError(f"{_flag(name)}: the members of a committee have seeds 0..K-1; give "
                         f"--members K")
    return _single(parse_space(options))


def parse_vary(specs):
    """``--vary`` texts as ``[(name, values or None)]``: None for the ladders ``hidden`` and
    ``distortion``. Raises SweepError."""
    parsed, seen = [], set()
    for spec in specs:
        text = str(spec).strip()
        name, has_values, values = text.partition("=")
        name = name.strip().lstrip("-").replace("-", "_")
        if not has_values and name not in SHORTHANDS:
            raise SweepError(f"--vary {text}: give NAME=V1,V2,... (e.g. hidden=600,800) or "
                             f"one of {', '.join(SHORTHANDS)}")
        if name == "seed":
            raise SweepError("--vary seed: the members differ by seed already (seeds 0..K-1 "
                             "for --members K)")
        if name in SHARED:
            raise SweepError(f"--vary {name.replace('_', '-')}: every member must have the same "
                             f"data and input scale ({', '.join(_flag(n) for n in SHARED)})")
        if name in seen:
            raise SweepError(f"--vary {name.replace('_', '-')} is given twice")
        seen.add(name)
        if not has_values:
            parsed.append((name, None))
            continue
        items = parse_space({name: values}).dims[name]
        if any(isinstance(item, (Range, tuple)) for item in items):
            raise SweepError(f"--vary {text}: a committee takes lists of values, not ranges")
        parsed.append((name, list(items)))
    return parsed


def _round(value):
    return float(f"{value:.4g}")


def _ladder(name, factor, resolved):
    """The options a ladder sets for a member with ``factor`` (none for factor 1)."""
    if factor == 1.0:
        return {}
    if name == "hidden":
        return {"hidden": [max(1, round(size * factor)) for size in resolved["hidden"]]}
    changes, distort = {}, resolved["distort"]
    if distort in ("elastic", "both"):
        changes["elastic_alpha"] = _round(resolved["elastic_alpha"] * factor)
    if distort in ("affine", "both"):
        for option, limit in _AFFINE_LIMITS.items():
            if resolved[option]:
                changes[option] = min(_round(resolved[option] * factor), limit)
    return changes


def plan_members(base, members, vary=()):
    """The options of each member: ``base`` with seed ``i`` and the varied options.

    Parameters
    ----------
    base : dict
        Shared ``train`` options by field name (:func:`parse_options`).
    members : int
        How many, 1 to :data:`MAX_MEMBERS`.
    vary : list of (name, values or None)
        From :func:`parse_vary`.

    Returns
    -------
    list of dict
        One trial's options per member.

    Raises
    ------
    SweepError
        An option both given and varied, a distortion ladder without a distortion, members
        whose outputs could not be averaged (different output kinds), or a member ``train``
        would refuse; all before any cluster starts.
    """
    from jitnet.engine.components import output_activation

    if "seed" in base:
        raise SweepError("--seed: the members of a committee have seeds 0..K-1; give "
                         "--members K")
    if not 1 <= members <= MAX_MEMBERS:
        raise SweepError(f"--members {members}: a committee has 1 to {MAX_MEMBERS} members")
    listed = [name for name, values in vary if values is not None]
    for name in listed:
        if name in base:
            raise SweepError(f"{_flag(name)} is given and varied by --vary: give one")
    if ("distortion", None) in vary:
        both = [name for name in listed if name in _DISTORTION_OPTIONS]
        if both:
            raise SweepError(f"--vary distortion scales {_flag(both[0])}, which --vary "
                             f"{both[0].replace('_', '-')}=... also sets: give one")
    resolved = full_options(base)
    if ("preprocess", None) in vary and "preprocess" in base:
        raise SweepError("--preprocess is given and varied by --vary preprocess: give one")
    if ("distortion", None) in vary and resolved["distort"] == "none":
        raise SweepError("--vary distortion: the members are not distorted (--distort none); "
                         "give --distort or a recipe that distorts")
    plans = []
    for i in range(members):
        options = {**base, "seed": i}
        for name, values in vary:
            if values is not None:
                options[name] = values[i % len(values)]
        for name, values in vary:
            if name == "preprocess" and values is None:
                options["preprocess"] = PREPROCESS_LADDER[i % len(PREPROCESS_LADDER)]
            elif values is None:
                options.update(_ladder(name, LADDER[i % len(LADDER)], full_options(options)))
        plans.append(options)
    outputs = {}
    for i, options in enumerate(plans):
        full = full_options(options)  # also every member's values checked, as train would
        outputs.setdefault(output_activation(full["activation"], full["loss"]), i)
        for name in SHARED:
            if full[name] != resolved[name]:
                raise SweepError(f"the member with seed {i} would have {_flag(name)} "
                                 f"{full[name]}, the one with seed 0 {resolved[name]}: members "
                                 f"share the data and input scale")
    if len(outputs) > 1:
        (a, i), (b, j) = list(outputs.items())[:2]
        raise SweepError(f"the member with seed {i} would have {a} outputs, the one with seed "
                         f"{j} {b} outputs: "
                         f"members must have the same kind of outputs to be averaged (vary "
                         f"--loss or --activation only where the output stays the same)")
    return plans


def varied_names(plans):
    """The options (other than seed) whose value differs between members, in order."""
    names = []
    for options in plans:
        for name in options:
            if name != "seed" and name not in names and \
                    len({repr(p.get(name)) for p in plans}) > 1:
                names.append(name)
    return names


def run_committee(options, out_dir, members=5, vary=(), scheduler=None, workers=None,
                  reporter=None, command=None):
    """Train a committee's members on Dask (or finish them), average them, write the files.

    Parameters
    ----------
    options : dict
        Shared ``train`` options by field name, JSON values as a trial takes them
        (``{"recipe": "simard2003-plain", "hidden": [500, 150], "epochs": 3}``;
        :func:`parse_options` makes them from command-line texts).
    out_dir : str or os.PathLike
        The committee folder: ``trials/<key>/`` per member, ``committee.json``,
        ``committee.md``, ``committee.png``. On a cluster given by address every worker must
        see it at the same path.
    members : int
    vary : sequence of str
        ``--vary`` specs (see the module's notes).
    scheduler, workers, reporter
        As for :func:`jitnet.sweep.run_sweep`.
    command : str, optional
        The command line, recorded in ``committee.json``.

    Returns
    -------
    jitnet.sweep.committee_report.CommitteeResult

    Raises
    ------
    SweepError
        Bad options, Dask missing, an unreachable scheduler; before any member runs.
    SweepInterrupted
        On Ctrl-C (members done so far keep their results; rerun to continue).
    """
    from jitnet.sweep.committee_report import write_committee

    reporter = reporter or SweepReporter()
    plans = plan_members(options, members, parse_vary(vary))
    out_dir = Path(out_dir).absolute()
    jobs = [(trial_key(p), p, out_dir / "trials" / trial_key(p)) for p in plans]
    records, skipped = run_jobs(jobs, out_dir, scheduler, workers, reporter, noun="members")
    by_key = {r["key"]: r for r in records}
    ordered = [by_key[key] for key, _, _ in jobs]
    return write_committee(out_dir, plans, ordered, varied_names(plans), list(vary), reporter,
                           ran=len(records) - skipped, skipped=skipped, command=command)
