"""The `dlcli` command line: options -> config -> one library call -> output.

Heavy modules (TensorFlow above all) are imported inside the commands, so `--help`
and bad options answer instantly.
"""

from __future__ import annotations

import os
import shlex
import sys

import click

from dlcli import __version__
from dlcli.errors import DlcliError, ExitStatus

CONTEXT = {"help_option_names": ["-h", "--help"], "show_default": True, "max_content_width": 100}


ARGV = "dlcli.argv"  # ctx.meta: the command line as given, for "run it again" advice


class DlcliGroup(click.Group):
    """Turns library errors into one-line messages; the traceback only with --debug."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta[ARGV] = list(args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt as exc:
            if _debug(ctx):
                raise
            click.echo(f"\n{interrupted(exc, ctx.invoked_subcommand, ctx.meta.get(ARGV, []))}", err=True)
            ctx.exit(ExitStatus.INTERRUPTED)
        except BrokenPipeError:
            # The reader went away (`| head -1`): what it wanted it has; end quietly, as
            # the tools `head` reads from do.
            _silence_stdout()
            ctx.exit(ExitStatus.SUCCESS)
        except DlcliError as exc:
            if _debug(ctx):
                raise
            raise click.ClickException(str(exc)) from None
        except OSError as exc:
            if _debug(ctx):
                raise
            where = f": {exc.filename}" if exc.filename else ""
            raise click.ClickException(f"{exc.strerror or exc}{where}") from None
        except Exception as exc:  # a bug: say so briefly, point at --debug
            if _debug(ctx):
                raise
            raise click.ClickException(
                f"internal error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
                "(run `dlcli --debug ...` for the traceback and please report it)"
            ) from None


def interrupted(exc: KeyboardInterrupt, command: str | None, argv: list[str]) -> str:
    """What Ctrl-C stopped and what to run next: a comparison is continued by running it
    again (its finished runs are in the ledger), a run by `dlcli resume` once it has a
    checkpoint, and anything stopped before that by running the command again."""
    again = shlex.join(["dlcli", *argv])
    what = getattr(exc, "what", "")
    if command == "compare":
        return (f"{what or 'interrupted'}; the runs finished before it are in the ledger: continue the comparison "
                f"with `{again}` (it reuses them and trains only what is missing)")  # fmt: skip
    if str(exc):  # a run's own advice: `dlcli resume ...`
        return str(exc)
    if command == "resume":
        return f"interrupted before the run went on; nothing changed: run `{again}` again"
    if command in ("xor", "mnist"):
        return f"interrupted before the run started training; nothing was kept: run `{again}` again"
    return f"interrupted: run `{again}` again" if command else "interrupted"


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush at exit does not fail
    on the closed pipe again ('Exception ignored ... BrokenPipeError')."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (CliRunner's)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def _debug(ctx: click.Context) -> bool:
    return bool(ctx.find_root().params.get("debug"))


@click.group(cls=DlcliGroup, context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="dlcli")
@click.option("--debug", is_flag=True, help="Show full tracebacks and TensorFlow's start-up messages.")
@click.option("--no-compile-cache", is_flag=True,
              help="Compile every training step afresh instead of reusing what this machine compiled before "
              "(kept in ~/.cache/dlcli/xla; DLCLI_COMPILE_CACHE=off does the same, =PATH moves it).")  # fmt: skip
def cli(debug: bool, no_compile_cache: bool) -> None:
    """A command-line lab for the experiments that explain why deep learning works.

    XOR that one logistic unit cannot learn but a deep net can; sigmoid vs ReLU;
    random-normal vs Xavier vs He initialisation; dropout and batch norm. Every run
    writes TensorBoard logs to logs/<run>/ and checkpoints to checkpoints/<run>/.
    """
    _show_warnings()
    if no_compile_cache:
        from dlcli.core import compile_cache

        compile_cache.disable()
    if debug:
        from dlcli.core import tf_setup

        tf_setup.set_verbose(True)


def _show_warnings() -> None:
    """The library reports recoverable problems through logging; show them on stderr."""
    import logging

    class ClickStderr(logging.Handler):
        def emit(self, record):
            click.echo(self.format(record), err=True)  # today's stderr, even under CliRunner

    logger = logging.getLogger("dlcli")
    if not logger.handlers:
        handler = ClickStderr()
        handler.setFormatter(logging.Formatter("warning: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.WARNING)
        logger.propagate = False


from dlcli.cli import board, compare, diagnose, inspect, runs  # noqa: E402  (the commands, registered below)


def first_sentence(help_text: str) -> str:
    """A command's summary for `dlcli --help`: its docstring's first sentence, whole
    (Click would cut it at the listing's width, mid-sentence)."""
    import re

    paragraph = " ".join(help_text.split("\n\n", 1)[0].split())
    return re.split(r"(?<=[a-z0-9)][.!?])\s+(?=[A-Z])", paragraph, maxsplit=1)[0]


for _command in (runs.xor, runs.mnist, runs.resume, compare.compare, inspect.inspect_run, diagnose.diagnose,
                 board.board):
    _command.short_help = _command.short_help or first_sentence(_command.help or "")
    cli.add_command(_command)


def main(*args, **kwargs):
    """The `dlcli` script and `python -m dlcli`."""
    try:
        return cli.main(*args, **kwargs)
    except SystemExit as stop:  # Click ends every standalone command this way
        leave(stop.code)
        raise


def leave(code) -> None:
    """End the process as `sys.exit(code)` would, minus Python's teardown of TensorFlow.

    With TensorFlow loaded, the interpreter's teardown (thousands of modules, then
    TensorFlow's own objects) costs ~1.7 CPU-seconds after the command is done
    (docs/speed.md). Everything a command leaves is on disk by then (checkpoints, run.json,
    the ledger, closed event files), so the process runs what `atexit` holds (the compile
    cache's publishing, logging's flush, multiprocessing's clean-up), flushes stdout and
    stderr and ends. Where something could still be running (a thread that is not a
    daemon, as a server or a process pool keeps), it returns for the usual exit."""
    import threading

    if "tensorflow" not in sys.modules or threading.current_thread() is not threading.main_thread():
        return
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        return
    import atexit

    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code & 0xFF
    else:  # sys.exit("message"): Python prints it and exits 1
        print(code, file=sys.stderr)
        status = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`| head`) or stream: nothing left to say
            pass
    os._exit(status)
