"""Recipes: named sets of ``train`` options that reproduce a published MNIST experiment
(``python cli.py train --recipe simard2003``).

A recipe is plain data, one line of :class:`jitnet.training.TrainConfig` fields, resolved by the
configuration itself (``TrainConfig(recipe=NAME, **options)``) for ``train``, ``sweep`` and the
library alike: options given win over it, and the run's ``config.json`` records the recipe's
name with every option it ended up with. Each recipe's ``about`` says which paper it follows, what is the same
and what differs. This module imports nothing, so the command line can list the recipes without
loading the engine.

Sources, as we read them in the papers (of these, the copies this project could search confirm
only Cireșan et al.'s abstract, 0.35%, and the 0.70% it quotes for Simard et al.'s 800-unit
network; check the papers before relying on the other settings):

- Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-based learning applied to document
  recognition", Proc. IEEE 86(11), 1998: 2-layer networks 784-300-10 (4.7% test error) and
  784-1000-10 (4.5%), squared error.
- P. Y. Simard, D. Steinkraus, J. C. Platt, "Best practices for convolutional neural networks
  applied to visual document analysis", ICDAR 2003: a 784-800-10 network with cross-entropy
  reaches 1.6% without distortions, 1.1% with affine and 0.7% with elastic distortions (a
  uniform(-1, 1) displacement field smoothed by a Gaussian of width sigma = 4 and scaled by
  alpha = 34).
- D. C. Cireșan, U. Meier, L. M. Gambardella, J. Schmidhuber, "Deep, big, simple neural nets
  for handwritten digit recognition", Neural Computation 22(12), 2010: plain online
  back-propagation of 784-1000-500-10 ... 784-2500-2000-1500-1000-500-10 networks with scaled
  tanh units (1.7159 tanh(2a/3)), weights uniform(-0.05, 0.05), a learning rate decayed by a
  constant factor every epoch, and training images deformed afresh every epoch: elastic
  (sigma 5-6, alpha 36-38), rotation and horizontal shear by up to ±15° (±7.5° for 1s and 7s)
  and horizontal/vertical scaling by up to ±15-20%; 0.49% test error for 784-1000-500-10,
  0.35% for the largest.
- U. Meier, D. C. Cireșan, L. M. Gambardella, J. Schmidhuber, "Better digit recognition with a
  committee of simple neural nets", ICDAR 2011: the outputs of 25 one-hidden-layer networks
  averaged, 0.39% test error; each member trained on differently preprocessed digits (width
  normalised to different widths, deslanted) so that the members' errors are decorrelated.
  (The abstract -- 25 one-hidden-layer nets, preprocessing per member, 0.39% -- is what this
  project could confirm.)
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Recipe:
    """A named set of ``train`` options.

    Attributes
    ----------
    options : dict
        TrainConfig fields and their values (the options the recipe sets).
    about : str
        The paper, what is the same and what differs.
    """

    options: dict
    about: str


RECIPES = {
    "tutorial": Recipe({}, """The back-propagation tutorial's experiment, jitnet's defaults:
        784-300-10 sigmoid units, squared error with 0.9/0.1 targets, weights uniform(-0.1, 0.1),
        rate 0.3, evaluation every 10 epochs, stop when the validation error rises. Differs from
        the tutorial: pixels scaled to [0, 1], samples shuffled, stopping on held-out training
        samples (see the README). 1.92% test error."""),
    "lecun1998": Recipe(
        {"hidden": (300,), "init": "lecun", "rate": 0.3, "schedule": "step", "decay": 0.5,
         "step_every": 5, "epochs": 20, "eval_every": 5, "patience": 3, "dtype": "float32"},
        """LeCun et al. (1998), "2-layer NN, 300 hidden units, mean square error": 4.7% test
        error (784-1000-10: 4.5%; give --hidden 1000 for it). Same: one hidden layer of 300,
        the squared error, initial weights of variance 1/fan-in (init lecun), 20 passes over
        the training set with a rate lowered in steps (as they trained LeNet-5). Differs: the
        tutorial's sigmoid units and 0.9/0.1 targets with plain per-sample SGD (rate 0.3,
        halved every 5 epochs) instead of their stochastic diagonal Levenberg-Marquardt rates;
        LeCun's scaled tanh units with these targets reached only 7.9%; 50,000 training images
        (10,000 held out for the stopping rule)."""),
    "simard2003": Recipe(
        {"hidden": (800,), "activation": "relu", "init": "he", "loss": "cross_entropy",
         "rate": 0.02, "schedule": "exponential", "decay": 0.98, "epochs": 200, "eval_every": 5,
         "patience": 8, "dtype": "float32", "distort": "elastic", "elastic_sigma": 4.0,
         "elastic_alpha": 34.0},
        """Simard et al. (2003), 784-800-10 with cross-entropy on elastically distorted images:
        0.7% test error. Same: one hidden layer of 800, softmax outputs with cross-entropy,
        per-sample updates, elastic distortion with sigma 4 and alpha 34 drawn afresh for every
        sample. Differs: relu hidden units with He's initial weights (jitnet's choice: they
        beat sigmoid units without distortions, see simard2003-plain); the rate decayed by 0.98
        every epoch; the fields come from a bank of 500 smoothed fields combined in pairs (the
        same statistics, see jitnet.engine.distortion); 50,000 training images (10,000 held out to pick
        the best epoch)."""),
    # The no-distortion bar: one line, so that better settings replace it in one place.
    "simard2003-plain": Recipe(
        {"hidden": (800,), "activation": "relu", "init": "he", "loss": "cross_entropy", "rate": 0.02, "schedule": "exponential", "decay": 0.95, "epochs": 40, "eval_every": 2, "patience": 4, "dtype": "float32"},  # noqa: E501
        """Simard et al. (2003) without distortions: 784-800-10 with cross-entropy, 1.6% test
        error. Same: one hidden layer of 800, softmax outputs with cross-entropy, per-sample
        updates, no distortion. Differs: relu hidden units with He's initial weights (sigmoid
        units with the tutorial's weights and rate 0.02 x0.94 reached 1.85%), rate 0.02 decayed
        by 0.95 every epoch, float32, 50,000 training images (10,000 held out to pick the best
        epoch)."""),
    "ciresan2010": Recipe(
        {"hidden": (1000, 500), "activation": "scaled_tanh", "init": "uniform:0.05",
         "loss": "cross_entropy", "rate": 0.001, "schedule": "exponential", "decay": 0.97,
         "epochs": 800, "eval_every": 10, "patience": 20, "dtype": "float32",
         "distort": "both", "elastic_sigma": 6.0, "elastic_alpha": 36.0, "rotate": 15.0,
         "scale": 0.15, "shear": 15.0},
        """Cireșan et al. (2010), their smallest network, 784-1000-500-10: 0.49% test error.
        Same: two hidden layers of 1000 and 500 scaled tanh units, weights uniform(-0.05,
        0.05), per-sample SGD from rate 0.001 decayed by 0.97 every epoch, training images
        deformed afresh every epoch (elastic sigma 6, alpha 36; rotation and shear up to ±15°;
        scaling up to ±15%). Differs: softmax outputs with cross-entropy (jitnet's choice), one
        rotation range for every digit (the paper used ±7.5° for 1s and 7s), elastic fields from
        a bank of 500, 50,000 training images (10,000 held out), and the CPU: an epoch takes
        seconds here, so its 800 epochs take hours."""),
    # One member of a committee: `jitnet committee --recipe meier2011 --vary preprocess`.
    "meier2011": Recipe(
        {"hidden": (800,), "activation": "relu", "init": "he", "loss": "cross_entropy", "rate": 0.02, "schedule": "exponential", "decay": 0.96, "epochs": 80, "eval_every": 5, "patience": 40, "dtype": "float32", "distort": "both", "elastic_sigma": 6.0, "elastic_alpha": 36.0, "rotate": 15.0, "scale": 0.15, "shear": 15.0},  # noqa: E501
        """Meier et al. (2011), a member of their committee of one-hidden-layer nets whose
        outputs are averaged: 0.39% test error with 25 members. Meant for `jitnet committee
        --recipe meier2011 --vary preprocess`, which gives member i the i-th preprocessing of
        deslanted and width-normalised digits (jitnet.Preprocessing), so that members err on
        different digits. Same: one hidden layer, per-sample training on digits deformed afresh
        every epoch (Cireșan et al. 2010's elastic sigma 6, alpha 36, rotation and shear up to
        ±15°, scaling up to ±15%), members preprocessed differently and their outputs averaged
        with equal weights. Differs: the members are simard2003's network (784-800-10 relu,
        softmax with cross-entropy), 80 epochs of rate 0.02 decayed by 0.96 every epoch (the
        best of every 5th epoch on the 10,000 held-out images is kept; patience 40 never ends a
        member early); the preprocessings are jitnet's ladder (deslant, then widths 12-18, and
        one member in six as it is), not necessarily the paper's set."""),
}


def describe(name):
    """The recipe's options as ``train`` options, e.g. ``--hidden 800 --loss cross-entropy``."""
    parts = []
    for field, value in RECIPES[name].options.items():
        option = "--" + field.replace("_", "-")
        if isinstance(value, tuple):
            value = ",".join(map(str, value))
        elif field in ("activation", "loss"):
            value = value.replace("_", "-")
        parts.append(f"{option} {value}")
    return " ".join(parts)
