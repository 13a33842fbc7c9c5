"""The unit non-linearities as the kernels know them: integer codes, and the scaled tanh's two
constants (LeCun et al. 1998, "Efficient BackProp": 1.7159 tanh(2z/3)). Plain numbers, so that
naming them loads no Numba."""

SIGMOID = 0
TANH = 1
SCALED_TANH = 2
RELU = 3
SOFTMAX = 4  # output layer only, with the cross-entropy loss
IDENTITY = 5  # f(z) = z; as the output, with scikit-learn's squared error (regression)
LOGISTIC = 6  # output layer only: the sigmoid with the binary log-loss (binary, multilabel)
EXP = 7  # output layer only: e^z with the Poisson deviance
SCALED_TANH_AMPLITUDE = 1.7159
SCALED_TANH_SLOPE = 2.0 / 3.0
