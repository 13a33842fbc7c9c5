"""MLPClassifier and MLPRegressor: scikit-learn's multi-layer perceptrons with ``solver='sgd'``
and ``batch_size=1``, trained by jitnet's compiled engine."""

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
from sklearn.utils.validation import column_or_1d, validate_data

from jitnet.sklearn._base import BaseMLP

_PARAMETERS = """
    Parameters
    ----------
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        Units of each hidden layer.
    activation : {'identity', 'logistic', 'tanh', 'relu'}, default='relu'
        The hidden units' activation.
    solver : {'sgd'}, default='sgd'
        Only per-sample SGD is offered; 'adam' and 'lbfgs' (scikit-learn's) are refused at
        ``fit``. scikit-learn's default is 'adam'.
    alpha : float, default=0.0001
        Strength of the L2 penalty, as scikit-learn applies it (per sample, to every weight).
    batch_size : {1}, default=1
        Only 1 is offered (one update per sample); anything else is refused at ``fit``.
        scikit-learn's default is 'auto' (mini-batches of up to 200).
    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        The schedule of the rate between epochs, as scikit-learn's: 'invscaling' sets
        ``learning_rate_init / (t_ + 1) ** power_t`` after each epoch; 'adaptive' divides the
        rate by 5 each time ``n_iter_no_change`` epochs fail to improve by ``tol``.
    learning_rate_init : float, default=0.001
        The rate of the first epoch.
    power_t : float, default=0.5
        The exponent of 'invscaling'.
    max_iter : int, default=200
        Most epochs per ``fit``.
    shuffle : bool, default=True
        Visit the samples of each epoch in a fresh permutation.
    random_state : int, RandomState instance or None, default=None
        The random stream of the initial weights, the early-stopping split and the
        permutations, drawn as scikit-learn draws them: the same value gives the same weights.
    tol : float, default=1e-4
        The improvement of the loss (or validation score) that counts as progress.
    verbose : bool, default=False
        Print scikit-learn's progress lines.
    warm_start : bool, default=False
        Start ``fit`` from the current ``coefs_`` and ``intercepts_`` (also ones you set).
    momentum : float, default=0.9
        Momentum in [0, 1) (1 is refused); velocities carry across epochs and
        ``partial_fit`` calls.
    nesterovs_momentum : bool, default=True
        Nesterov's momentum rather than the classical one.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data (stratified for classifiers), stop when
        its score stalls and keep the best weights.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=10
        Epochs without improvement by ``tol`` before stopping (or, 'adaptive', a smaller rate).
    dtype : {'float64', 'float32'}, default='float64'
        jitnet's own: the precision of the weights and of training (float32 is about twice as
        fast). scikit-learn follows the dtype of X instead.
    threads : int, default=1
        jitnet's own: threads sharing each sample's work (any momentum and alpha); 1 is
        serial; N gives the same weights on every run and agrees with 1 to rounding.
"""

_ATTRIBUTES = """
    Attributes
    ----------
    coefs_ : list of ndarray, (n_in, n_out) per layer
    intercepts_ : list of ndarray, (n_out,) per layer
    n_iter_ : int
        Epochs run by the last ``fit`` (1 after ``partial_fit``).
    t_ : int
        Samples trained on, over every call.
    loss_ : float
        The mean loss of the last epoch, each sample's loss taken before its update.
    loss_curve_ : list of float
        ``loss_`` of every epoch.
    best_loss_ : float or None
    validation_scores_ : list of float or None
        The score on the held-out part after each epoch (``early_stopping``).
    best_validation_score_ : float or None
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when X had string column names.
    n_layers_ : int
    n_outputs_ : int
    out_activation_ : str
"""


class MLPClassifier(ClassifierMixin, BaseMLP):
    __doc__ = """A multi-layer perceptron classifier trained by per-sample SGD in jitnet's engine.

    A drop-in for ``sklearn.neural_network.MLPClassifier(solver='sgd', batch_size=1)``: the same
    parameters and random stream give the same weights, hundreds of times faster. Multiclass
    problems get softmax outputs and the log-loss.
    """ + _PARAMETERS + """
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
""" + _ATTRIBUTES.split("----------\n", 1)[1]

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="sgd",
                 alpha=0.0001, batch_size=1, learning_rate="constant", learning_rate_init=0.001,
                 power_t=0.5, max_iter=200, shuffle=True, random_state=None, tol=1e-4,
                 verbose=False, warm_start=False, momentum=0.9, nesterovs_momentum=True,
                 early_stopping=False, validation_fraction=0.1, n_iter_no_change=10,
                 dtype="float64", threads=1):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
            alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            loss="log_loss", shuffle=shuffle, random_state=random_state, tol=tol,
            verbose=verbose, warm_start=warm_start, momentum=momentum,
            nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, n_iter_no_change=n_iter_no_change,
            dtype=dtype, threads=threads)

    def _out_activation(self):
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, multi_output=True, dtype=(np.float64, np.float32),
                             reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer().fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in the "
                        f"previous call to fit. Previously got {self.classes_}, `y` has {classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has "
                                 f"{self.classes_}. 'y' has {classes}.")
        return X, self._label_binarizer.transform(y).astype(bool)

    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over (X, y) from the current state; ``classes`` (every label there will
        be) is needed on the first call. Returns self."""
        self._validate_params()
        self._check_offered(sample_weight)
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer().fit(
                y if type_of_target(y).startswith("multilabel") else classes)
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict(self, X):
        """Predicted labels (n_samples,) or indicator rows for multilabel targets."""
        self._check_fitted()
        return self._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        return self._label_binarizer.inverse_transform(y_pred)

    def _score(self, X, y, sample_weight=None):
        return self._score_with_function(X, y, sample_weight, accuracy_score)

    def predict_proba(self, X):
        """Class probabilities (n_samples, n_classes), columns in the order of ``classes_``."""
        self._check_fitted()
        y_pred = self._forward_pass_fast(X)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        if y_pred.ndim == 1:
            return np.vstack([1 - y_pred, y_pred]).T
        return y_pred

    def predict_log_proba(self, X):
        """The log of :meth:`predict_proba`."""
        y_prob = self.predict_proba(X)
        return np.log(y_prob, out=y_prob)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, BaseMLP):
    __doc__ = """A multi-layer perceptron regressor trained by per-sample SGD in jitnet's engine.

    A drop-in for ``sklearn.neural_network.MLPRegressor(solver='sgd', batch_size=1)``: identity
    outputs and the squared error as scikit-learn computes it.

    Parameters
    ----------
    loss : {'squared_error', 'poisson'}, default='squared_error'
""" + _PARAMETERS.split("----------\n", 1)[1] + _ATTRIBUTES

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="sgd", alpha=0.0001, batch_size=1, learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=10, dtype="float64", threads=1):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
            alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            loss=loss, shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change, dtype=dtype, threads=threads)

    _parameter_constraints = {
        **BaseMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson"})],
    }

    def _out_activation(self):
        return "exp" if self.loss == "poisson" else "identity"

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if self.loss == "poisson" and (y < 0).any():
            raise ValueError("MLPRegressor: loss='poisson' needs targets y >= 0 (counts)")
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y) from the current state. Returns self."""
        self._validate_params()
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict(self, X):
        """Predicted values (n_samples,) or (n_samples, n_outputs)."""
        self._check_fitted()
        return self._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        return y_pred.ravel() if y_pred.shape[1] == 1 else y_pred

    def _score(self, X, y, sample_weight=None):
        return self._score_with_function(X, y, sample_weight, r2_score)
