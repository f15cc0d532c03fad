"""dlcli: a command-line lab for the experiments that explain why deep learning works."""

__version__ = "0.2.0"
