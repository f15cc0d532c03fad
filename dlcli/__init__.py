"""dlcli: a command-line lab for the experiments that explain why deep learning works.

From Python (and Jupyter): `dlcli.xor(...)`, `dlcli.mnist(...)`, `dlcli.compare(...)`,
`dlcli.resume(path)`, `dlcli.inspect(run)`, `dlcli.diagnose(run)` and `dlcli.Lab` (see dlcli.api). They are
looked up on first use, so `import dlcli` stays instant: no TensorFlow, Click or
tabulate until something runs.
"""

__version__ = "0.3.6"

# The Python API's names, each found in dlcli.api when first asked for (PEP 562).
API = ("xor", "mnist", "compare", "resume", "inspect", "diagnose", "Lab")


def __getattr__(name: str):
    if name in API:
        from dlcli import api

        return getattr(api, name)
    raise AttributeError(f"module 'dlcli' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *API])
