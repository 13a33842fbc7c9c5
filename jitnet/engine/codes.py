"""The unit non-linearities as the kernels know them: integer codes, and the scaled tanh's two
constants (LeCun et al. 1998, "Efficient BackProp": 1.7159 tanh(2z/3)). Plain numbers, so that
naming them loads no Numba."""

SIGMOID = 0
TANH = 1
SCALED_TANH = 2
RELU = 3
SOFTMAX = 4  # output layer only, with the cross-entropy loss
SCALED_TANH_AMPLITUDE = 1.7159
SCALED_TANH_SLOPE = 2.0 / 3.0
