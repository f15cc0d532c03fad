"""The lectures' variant sets and the papers behind them (`--what`): named variants,
the presets grouping them, and the base run a paper's preset brings along."""

from __future__ import annotations

from dataclasses import dataclass, field

_LECTURE_MLP = ("activation", "init", "layers", "units", "dropout", "batchnorm")


def _mlp(activation, init, layers, units, dropout=0.0, batchnorm=False) -> dict:
    return dict(zip(_LECTURE_MLP, (activation, init, layers, units, dropout, batchnorm)))


@dataclass(frozen=True)
class Paper:
    """A paper as a preset: the variants its figure compares (each sets only what it
    changes) on a base run of the paper's kind, scaled down to a laptop.

    `base` holds every other setting the paper fixes: the settings a user gives
    (`--units 1000`, `--epochs 20`) replace these, where a setting of the variants
    cannot be given at all. `test_errors` are the paper's own numbers per variant
    (None: the paper gives none), shown beside dlcli's with `reference` saying what
    they are."""

    title: str  # authors, year: what it shows
    base: dict  # {setting name: value}, shared by the variants
    scale: str  # the scale-down from the paper's setup, in a few words
    test_errors: dict = field(default_factory=dict)  # {variant: the paper's test error (a fraction)}
    reference: str = ""


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

# -- the papers (docs/papers/) ----------------------------------------------------------
# Each scale was chosen so that the preset's runs with one seed take about two minutes
# on a 2-core CPU on the 8,000 training digits of the MNIST test-set split (the full
# 60,000-digit training set makes every epoch 7.5 times longer).

# Glorot & Bengio 2010, "Understanding the difficulty of training deep feedforward
# neural networks": 5 hidden layers of 1000, SGD on mini-batches of 10; their
# "standard" init U[-1/sqrt(n), 1/sqrt(n)] vs the normalised one (Xavier, glorot_uniform).
GLOROT_ACTIVATIONS = ("sigmoid", "tanh", "softsign")
for _activation in GLOROT_ACTIVATIONS:
    VARIANTS["mnist"][f"{_activation}-standard"] = {"activation": _activation, "init": "standard"}
    VARIANTS["mnist"][f"{_activation}-normalized"] = {"activation": _activation, "init": "xavier"}
# He et al. 2015, "Delving deep into rectifiers", Fig. 3: a 30-layer ReLU net from
# "Xavier" init, which they define as std sqrt(1/n) (n the fan-in), does not learn;
# from theirs, std sqrt(2/n), it does. Keras' lecun_normal and he_normal are exactly
# these (truncated normals rescaled to that std); glorot_normal's std is
# sqrt(2/(fan_in + fan_out)), which differs wherever the fans do.
VARIANTS["mnist"]["xavier-lecun_normal"] = {"init": "lecun_normal"}
VARIANTS["mnist"]["he-he_normal"] = {"init": "he_normal"}
# Ioffe & Szegedy 2015, "Batch normalization", Fig. 1: 3 hidden layers of 100 sigmoid
# units, with and without batch norm, SGD on mini-batches of 60.
VARIANTS["mnist"]["sigmoid-plain"] = {"batchnorm": False}
VARIANTS["mnist"]["sigmoid-batchnorm"] = {"batchnorm": True}

PAPERS = {
    "glorot": Paper(
        title="Glorot & Bengio 2010: standard vs normalised initialisation",
        base={"layers": 6, "units": 100, "optimizer": "sgd", "lr": 0.03, "batch-size": 10, "epochs": 10},
        scale="5 hidden layers of 100 units (paper: 1000), 10 epochs (paper: trained to convergence)",
        # Table 1, MNIST column. The paper gives no number for sigmoid with the normalised init.
        test_errors={"sigmoid-standard": 0.0221, "tanh-standard": 0.0176, "tanh-normalized": 0.0164,
                     "softsign-standard": 0.0164, "softsign-normalized": 0.0172},
        reference="the paper's MNIST test error (Glorot & Bengio 2010, Table 1) after full-length training of "
        "5 hidden layers of 1000 units; dlcli's runs are scaled down: compare the ranking, not the digits",
    ),
    "he": Paper(
        title="He et al. 2015, Fig. 3: 30 ReLU layers from Xavier vs He initialisation",
        base={"layers": 30, "units": 64, "activation": "relu", "optimizer": "sgd", "lr": 0.01, "batch-size": 32,
              "epochs": 5},
        scale="a 30-layer MLP of 64 units (paper: a 30-layer convolutional net on ImageNet), 5 epochs",
    ),
    "batchnorm": Paper(
        title="Ioffe & Szegedy 2015, Fig. 1: 3 sigmoid layers with and without batch norm",
        base={"layers": 4, "units": 100, "activation": "sigmoid", "init": "glorot_normal", "optimizer": "sgd",
              "lr": 0.1, "batch-size": 60, "epochs": 30},
        scale="4,000 steps of batch 60 (paper: 50,000)",
    ),
}
PRESETS["mnist"]["glorot"] = [f"{a}-{init}" for a in GLOROT_ACTIVATIONS for init in ("standard", "normalized")]
PRESETS["mnist"]["he"] = ["xavier-lecun_normal", "he-he_normal"]
PRESETS["mnist"]["batchnorm"] = ["sigmoid-plain", "sigmoid-batchnorm"]

DEFAULT_PRESET = {"mnist": "all", "xor": "depth"}
ALL_PRESETS = tuple(dict.fromkeys(p for presets in PRESETS.values() for p in presets))


def preset_help() -> str:
    """The --what choices in words, for compare's --help."""
    lectures = ", ".join(p for p in PRESETS["mnist"] if p not in PAPERS)
    papers = "; ".join(f"{name} ({paper.title.split(':')[0]})" for name, paper in PAPERS.items())
    return f"{lectures} (mnist, the lectures); {papers} (mnist, the papers); {', '.join(PRESETS['xor'])} (xor)"
