"""Judging a network: confusion matrix, precision and recall (:mod:`~jitnet.evaluation.metrics`)
and the gradient check by central differences, the tutorial's Eq. 6, on any engine
(:mod:`~jitnet.evaluation.gradcheck`)."""
