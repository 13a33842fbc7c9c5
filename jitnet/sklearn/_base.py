"""What MLPClassifier and MLPRegressor share: parameters, the checks of what is offered, the
initial weights, the epoch loop (scikit-learn's, step for step) and the forward pass.

The epoch loop mirrors scikit-learn's ``BaseMultilayerPerceptron._fit_stochastic`` with
``batch_size=1``: the same random draws in the same order (weights, then the validation split,
then one permutation per epoch, all from ``check_random_state(random_state)``), the same
bookkeeping (``loss_curve_``, ``best_loss_``, ``_no_improvement_count``, ``t_``) and messages;
only the samples of an epoch run in jitnet's compiled engine instead of Python.
"""

import warnings
from numbers import Integral, Real

import numpy as np
from scipy.special import expit
from sklearn.base import BaseEstimator, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state, shuffle
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from jitnet.sklearn._sgd import EngineEpochs, SGDOptimizer


def _softmax(z):
    z -= z.max(axis=1)[:, None]
    np.exp(z, out=z)
    z /= z.sum(axis=1)[:, None]


#: Unit activations, in place on a (N, n) array, by scikit-learn's names.
_ACTIVATIONS = {
    "identity": lambda z: None,
    "logistic": lambda z: expit(z, out=z),
    "tanh": lambda z: np.tanh(z, out=z),
    "relu": lambda z: np.maximum(z, 0, out=z),
    "softmax": _softmax,
    "exp": lambda z: np.exp(z, out=z),
}


class BaseMLP(BaseEstimator):
    """Shared by :class:`MLPClassifier` and :class:`MLPRegressor` (see there)."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions({"identity", "logistic", "tanh", "relu"})],
        "solver": [StrOptions({"lbfgs", "sgd", "adam"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
        "dtype": [StrOptions({"float64", "float32"})],
        "threads": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, hidden_layer_sizes, activation, solver, alpha, batch_size, learning_rate,
                 learning_rate_init, power_t, max_iter, loss, shuffle, random_state, tol,
                 verbose, warm_start, momentum, nesterovs_momentum, early_stopping,
                 validation_fraction, n_iter_no_change, dtype, threads):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.loss = loss
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.dtype = dtype
        self.threads = threads

    # -- what is offered --------------------------------------------------------------------

    def _refuse(self, problem):
        raise ValueError(f"{type(self).__name__}: {problem}")

    def _check_offered(self, sample_weight):
        """Refuse, in one line, a setting jitnet does not train (before any state changes)."""
        if self.solver != "sgd":
            self._refuse(f"solver={self.solver!r} is not offered: jitnet trains by per-sample "
                         "SGD only (solver='sgd', batch_size=1)")
        if self.batch_size != 1:
            self._refuse(f"batch_size={self.batch_size!r} is not offered: jitnet trains by "
                         "per-sample SGD only (solver='sgd', batch_size=1)")
        if self.momentum >= 1:
            self._refuse("momentum=1 is not offered (velocities that never decay); pass a "
                         "momentum below 1")

    # -- fitting ---------------------------------------------------------------------------

    def _fit(self, X, y, sample_weight=None, incremental=False):
        self._check_offered(sample_weight)
        hidden_layer_sizes = self.hidden_layer_sizes
        if not hasattr(hidden_layer_sizes, "__iter__"):
            hidden_layer_sizes = [hidden_layer_sizes]
        hidden_layer_sizes = list(hidden_layer_sizes)
        if np.any(np.array(hidden_layer_sizes) <= 0):
            raise ValueError("hidden_layer_sizes must be > 0, got %s." % hidden_layer_sizes)
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)

        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, ensure_non_negative=True)
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        self.n_outputs_ = y.shape[1]
        layer_units = [X.shape[1]] + hidden_layer_sizes + [self.n_outputs_]
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(y, layer_units)
        self._fit_stochastic(X, y, sample_weight, incremental)
        if not all(np.isfinite(w).all() for w in self.coefs_ + self.intercepts_):
            raise ValueError("Solver produced non-finite parameter weights. The input data may"
                             " contain large values and need to be preprocessed.")
        return self

    def _initialize(self, y, layer_units):
        """Fresh attributes and initial weights, drawn as scikit-learn draws them."""
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = y.shape[1]
        self.n_layers_ = len(layer_units)
        self.out_activation_ = self._out_activation()
        self.coefs_, self.intercepts_ = [], []
        # Glorot's bound, with scikit-learn's factor 2 for logistic units (6 otherwise); the
        # weights then the biases of each layer, in float64 from the one random stream.
        factor = 2.0 if self.activation == "logistic" else 6.0
        for fan_in, fan_out in zip(layer_units[:-1], layer_units[1:]):
            bound = np.sqrt(factor / (fan_in + fan_out))
            coef = self._random_state.uniform(-bound, bound, (fan_in, fan_out))
            intercept = self._random_state.uniform(-bound, bound, fan_out)
            self.coefs_.append(coef.astype(self.dtype, copy=False))
            self.intercepts_.append(intercept.astype(self.dtype, copy=False))
        self._best_coefs = [c.copy() for c in self.coefs_]
        self._best_intercepts = [i.copy() for i in self.intercepts_]
        self.loss_curve_ = []
        self._no_improvement_count = 0
        if self.early_stopping:
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.best_loss_ = np.inf
            self.validation_scores_ = None
            self.best_validation_score_ = None

    def _split(self, X, y, sample_weight):
        """(training part, validation part) of (X, y, sample_weight), as scikit-learn splits
        them for early stopping (stratified for single-output classifiers)."""
        if not self.early_stopping:
            return (X, y, sample_weight), (None, None, None)
        stratify = y if is_classifier(self) and self.n_outputs_ == 1 else None
        arrays = (X, y) if sample_weight is None else (X, y, sample_weight)
        parts = train_test_split(*arrays, random_state=self._random_state,
                                 test_size=self.validation_fraction, stratify=stratify)
        train, val = list(parts[0::2]), list(parts[1::2])
        if sample_weight is None:
            train.append(None)
            val.append(None)
        if val[0].shape[0] < 2:
            raise ValueError("The validation set is too small. Increase 'validation_fraction' "
                             "or the size of your dataset.")
        if is_classifier(self):
            val[1] = self._label_binarizer.inverse_transform(val[1])
        return tuple(train), tuple(val)

    def _fit_stochastic(self, X, y, sample_weight, incremental):
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = SGDOptimizer(self.learning_rate_init, self.learning_rate,
                                           self.momentum, self.nesterovs_momentum, self.power_t)
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        (X_train, y_train, sw_train), (X_val, y_val, sw_val) = self._split(X, y, sample_weight)
        n_samples = X_train.shape[0]
        sample_idx = np.arange(n_samples, dtype=int)
        engine = EngineEpochs(self.coefs_, self.intercepts_, self.activation,
                              self.out_activation_, self.dtype, X_train, y_train, sw_train,
                              self.alpha, self._optimizer, self.threads)
        try:
            self.n_iter_ = 0
            for _ in range(self.max_iter):
                if self.shuffle:
                    sample_idx = shuffle(sample_idx, random_state=self._random_state)
                self.loss_ = engine.epoch(sample_idx)
                self.coefs_, self.intercepts_ = engine.weights()
                self.n_iter_ += 1
                self.t_ += n_samples
                self.loss_curve_.append(self.loss_)
                if self.verbose:
                    print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
                self._update_no_improvement_count(X_val, y_val, sw_val)
                self._optimizer.iteration_ends(self.t_)
                if self._no_improvement_count > self.n_iter_no_change:
                    what = "Validation score" if self.early_stopping else "Training loss"
                    msg = (f"{what} did not improve more than tol={self.tol:f} for "
                           f"{self.n_iter_no_change} consecutive epochs.")
                    if self._optimizer.trigger_stopping(msg, self.verbose):
                        break
                    self._no_improvement_count = 0
                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn("Stochastic Optimizer: Maximum iterations (%d) reached and the "
                                  "optimization hasn't converged yet." % self.max_iter,
                                  ConvergenceWarning)
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.")
            self.coefs_, self.intercepts_ = engine.weights()
        engine.save_velocities()
        if self.early_stopping:
            self.coefs_ = self._best_coefs
            self.intercepts_ = self._best_intercepts

    def _update_no_improvement_count(self, X_val, y_val, sample_weight_val):
        if self.early_stopping:
            score = self._score(X_val, y_val, sample_weight=sample_weight_val)
            self.validation_scores_.append(score)
            if self.verbose:
                print("Validation score: %f" % score)
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_coefs = [c.copy() for c in self.coefs_]
                self._best_intercepts = [i.copy() for i in self.intercepts_]
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    def fit(self, X, y, sample_weight=None):
        """Fit the model to X (n_samples, n_features) and y, by per-sample SGD; returns self."""
        self._validate_params()
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    # -- predicting ------------------------------------------------------------------------

    def _forward_pass_fast(self, X, check_input=True):
        """The outputs (N, n_outputs_) of the network for X (N, n_features)."""
        if check_input:
            X = validate_data(self, X, dtype=(np.float64, np.float32), reset=False)
        a = X
        last = len(self.coefs_) - 1
        for l, (W, b) in enumerate(zip(self.coefs_, self.intercepts_)):
            a = a @ W
            a += b
            _ACTIVATIONS[self.out_activation_ if l == last else self.activation](a)
        return a

    def _score_with_function(self, X, y, sample_weight, score_function):
        y_pred = self._predict(X, check_input=False)
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return score_function(y, y_pred, sample_weight=sample_weight)

    def _check_fitted(self):
        check_is_fitted(self, "coefs_")

    def _expected_failed_checks(self):
        """The estimator checks this estimator is known to fail, with the reason of each (for
        ``check_estimator(expected_failed_checks=...)``: scikit-learn >= 1.6 no longer reads
        them from the tags)."""
        return {
            "check_sample_weight_equivalence_on_dense_data":
                "with one sample per update scikit-learn divides each sample's gradient by "
                "its own weight, so that a weight of 2 is not two copies of the sample "
                "(scikit-learn's MLP with batch_size=1 fails this check too)",
        }

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags
