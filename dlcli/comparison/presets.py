"""The lectures' variant sets (`--what`): named variants and the presets grouping them."""

from __future__ import annotations

_LECTURE_MLP = ("activation", "init", "layers", "units", "dropout", "batchnorm")


def _mlp(activation, init, layers, units, dropout=0.0, batchnorm=False) -> dict:
    return dict(zip(_LECTURE_MLP, (activation, init, layers, units, dropout, batchnorm)))


# Lab 10-1: sigmoid vs relu, 2 hidden layers of 256, random-normal init.
# Lab 10-2: normal vs xavier vs he with relu. Labs 10-2-2, 10-3, 10-4: the deep net
# (4 hidden layers of 512, relu, xavier) plain, with dropout 0.5, with batch norm.
# Lecture 9 (XOR): one logistic unit, Lab 09-2's two layers, Lab 09-3's four.
VARIANTS = {
    "mnist": {
        "sigmoid-normal": _mlp("sigmoid", "normal", 3, 256),
        "relu-normal": _mlp("relu", "normal", 3, 256),
        "relu-xavier": _mlp("relu", "xavier", 3, 256),
        "relu-he": _mlp("relu", "he", 3, 256),
        "deep": _mlp("relu", "xavier", 5, 512),
        "deep-dropout": _mlp("relu", "xavier", 5, 512, dropout=0.5),
        "deep-batchnorm": _mlp("relu", "xavier", 5, 512, batchnorm=True),
    },
    "xor": {f"layers={n}": {"layers": n} for n in (1, 2, 4)},
}
PRESETS = {
    "mnist": {
        "activation": ["sigmoid-normal", "relu-normal"],
        "init": ["relu-normal", "relu-xavier", "relu-he"],
        "regularization": ["deep", "deep-dropout", "deep-batchnorm"],
    },
    "xor": {"depth": ["layers=1", "layers=2", "layers=4"]},
}
PRESETS["mnist"]["all"] = list(dict.fromkeys(v for names in PRESETS["mnist"].values() for v in names))
DEFAULT_PRESET = {"mnist": "all", "xor": "depth"}
ALL_PRESETS = tuple(dict.fromkeys(p for presets in PRESETS.values() for p in presets))
