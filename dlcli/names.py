"""The activation, initializer and optimizer names dlcli knows without asking Keras.

Pure data at the bottom of the package: `dlcli.settings` checks names against these
lists, and `dlcli.core.models` turns the lectures' initializer names into Keras' own.
Neither needs the other for that, so the settings layer never waits on TensorFlow for
a listed name, and the core never imports the settings layer back.
"""

ACTIVATIONS = (
    "celu", "elu", "exponential", "gelu", "hard_sigmoid", "hard_silu", "hard_swish",
    "hard_tanh", "leaky_relu", "linear", "log_sigmoid", "mish", "relu", "relu6", "selu",
    "sigmoid", "silu", "softplus", "softsign", "squareplus", "swish", "tanh",
)  # fmt: skip
# The lectures' names first (Lab 10-2), then Keras' own. "standard" is Glorot & Bengio's
# (2010) name for the uniform init of their time, U[-1/sqrt(n), 1/sqrt(n)] with n the
# layer's fan-in: Keras' variance_scaling with scale 1/3, fan_in, uniform draws from
# U[-sqrt(3 * scale / n), +sqrt(3 * scale / n)], which is exactly that (core.models).
INIT_ALIASES = {
    "normal": "random_normal",
    "xavier": "glorot_uniform",
    "he": "he_uniform",
    "standard": "variance_scaling",
}
INITIALIZERS = tuple(INIT_ALIASES) + (
    "glorot_normal", "glorot_uniform", "he_normal", "he_uniform", "lecun_normal",
    "lecun_uniform", "ones", "orthogonal", "random_normal", "random_uniform",
    "truncated_normal", "variance_scaling", "zeros",
)  # fmt: skip
OPTIMIZERS = (
    "adadelta", "adafactor", "adagrad", "adam", "adamax", "adamw", "ftrl", "lion",
    "nadam", "rmsprop", "sgd",
)  # fmt: skip
DATASETS = ("mnist", "fashion_mnist")
TASKS = ("xor", "mnist")
