"""Learning-rate schedules: the rate of each epoch, evaluated in Python before the epoch's one
compiled call (the kernels see a constant rate within an epoch).

A schedule is built from a spec string and the base rate, and answers ``rate_at(epoch)`` for the
absolute epoch number (0 for the first), so that a resumed run continues exactly where it
stopped::

    >>> s = make_schedule("exponential:0.94", 0.02)
    >>> s.rate_at(0), round(s.rate_at(10), 6)
    (0.02, 0.010772)

Specs: ``constant``; ``exponential:GAMMA`` (rate * GAMMA**epoch, 0 < GAMMA <= 1);
``step:FACTOR:EVERY`` (rate * FACTOR**(epoch // EVERY), 0 < FACTOR <= 1, EVERY >= 1 epochs).
"""

import math
from dataclasses import dataclass

from jitnet.engine.checks import check_count, check_positive

SPECS = ("constant", "exponential:GAMMA", "step:FACTOR:EVERY")


@dataclass(frozen=True)
class Schedule:
    """A learning-rate schedule: ``rate_at(epoch)``; see the module docstring for the kinds.

    Attributes
    ----------
    kind : {'constant', 'exponential', 'step'}
    rate : float
        The rate of epoch 0.
    factor : float
        GAMMA of ``exponential``, FACTOR of ``step``; 1 for ``constant``.
    every : int
        EVERY of ``step``; 1 otherwise.
    """

    kind: str
    rate: float
    factor: float = 1.0
    every: int = 1

    def rate_at(self, epoch):
        """The learning rate of epoch ``epoch`` (0-based, counted from the start of training)."""
        epoch = check_count("epoch", epoch)
        if self.kind == "constant":
            return self.rate
        steps = epoch if self.kind == "exponential" else epoch // self.every
        return self.rate * self.factor**steps

    @property
    def spec(self):
        """The spec string this schedule was made from (canonical form)."""
        if self.kind == "constant":
            return "constant"
        if self.kind == "exponential":
            return f"exponential:{self.factor!r}"
        return f"step:{self.factor!r}:{self.every}"


def _factor(text, name, spec):
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 < value <= 1):
        raise ValueError(f"schedule {spec!r}: {name} must be a number in (0, 1], got {text!r}")
    return value


def make_schedule(spec, rate):
    """A :class:`Schedule` from a spec string (see the module docstring) and the base rate.

    Raises
    ------
    ValueError
        For an unknown kind, a factor outside (0, 1], a step length below 1 or a bad rate.
    """
    rate = float(check_positive("rate", rate))
    if isinstance(spec, Schedule):
        spec = spec.spec
    if not isinstance(spec, str):
        raise ValueError(f"schedule must be one of {', '.join(SPECS)}; got {spec!r}")
    kind, *values = spec.split(":")
    if kind == "constant" and not values:
        return Schedule("constant", rate)
    if kind == "exponential" and len(values) == 1:
        return Schedule("exponential", rate, _factor(values[0], "GAMMA", spec))
    if kind == "step" and len(values) == 2:
        factor = _factor(values[0], "FACTOR", spec)
        if not (values[1].isdigit() and int(values[1]) >= 1):
            raise ValueError(f"schedule {spec!r}: EVERY must be a whole number >= 1, "
                             f"got {values[1]!r}")
        return Schedule("step", rate, factor, int(values[1]))
    raise ValueError(f"schedule must be one of {', '.join(SPECS)}; got {spec!r}")
