"""scikit-learn's own estimator checks (sklearn.utils.estimator_checks) on jitnet.sklearn's
estimators, with the exceptions each declares (at most two, with reasons)."""

import pytest

pytest.importorskip("sklearn")

from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from jitnet.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

#: scikit-learn's defaults but fewer epochs, so that the checks run quickly: for the classifier
#: a larger rate, so that it still learns the small problems they pose; for the regressor a
#: smaller one, as per-sample SGD at scikit-learn's default rate diverges on the checks' targets
#: in the hundreds (scikit-learn's MLPRegressor(solver='sgd', batch_size=1) diverges there too).
ESTIMATORS = [MLPClassifier(learning_rate_init=0.01, max_iter=100),
              MLPRegressor(learning_rate_init=1e-4, max_iter=100)]


def test_at_most_two_declared_exceptions_each_with_a_reason():
    for estimator in ESTIMATORS:
        declared = estimator._expected_failed_checks()
        assert len(declared) <= 2
        assert all(isinstance(reason, str) and len(reason) > 20 for reason in declared.values())


@parametrize_with_checks(ESTIMATORS,
                         expected_failed_checks=lambda est: est._expected_failed_checks())
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)
