"""The `dlcli` command line: options -> config -> one library call -> output.

Heavy modules (TensorFlow above all) are imported inside the commands, so `--help`
and bad options answer instantly.
"""

from __future__ import annotations

import click

from dlcli import __version__
from dlcli.errors import DlcliError, ExitStatus

CONTEXT = {"help_option_names": ["-h", "--help"], "show_default": True, "max_content_width": 100}


class DlcliGroup(click.Group):
    """Turns library errors into one-line messages; the traceback only with --debug."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt as exc:
            if _debug(ctx):
                raise
            click.echo(f"\n{exc or 'interrupted'}", err=True)
            ctx.exit(ExitStatus.INTERRUPTED)
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

for _command in (runs.xor, runs.mnist, runs.resume, compare.compare, inspect.inspect_run, diagnose.diagnose, board.board):
    cli.add_command(_command)


def main(*args, **kwargs):
    return cli.main(*args, **kwargs)
