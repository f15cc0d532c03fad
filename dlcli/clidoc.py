"""The CLI reference (docs/cli.md), generated from the Click commands themselves.

    python -m dlcli.clidoc > docs/cli.md

For the `dlcli` group and each of its commands: the usage line, the help text and a
table of the options (flags, type, default, environment variable, help). The page is
built from the command objects, not from `--help`'s output, so it does not depend on
the terminal's width, and it is the same on every machine (tests/test_docs.py checks
that docs/cli.md is up to date). Imports Click and dlcli.cli only: no TensorFlow.
"""

from __future__ import annotations

import inspect
import re
import sys

import click

from dlcli.cli import cli

REGENERATE = "python -m dlcli.clidoc > docs/cli.md"

# Click >= 8.3 marks "no default given" with a sentinel instead of None.
_UNSET = getattr(click.core, "UNSET", None)


def render(group: click.Group = cli, name: str = "dlcli") -> str:
    """The whole reference page as Markdown."""
    root = click.Context(group, info_name=name, **group.context_settings)
    commands = [(name, group, root)]
    for sub in group.list_commands(root):
        command = group.get_command(root, sub)
        if command is not None and not command.hidden:
            ctx = click.Context(command, info_name=sub, parent=root, **command.context_settings)
            commands.append((f"{name} {sub}", command, ctx))
    lines = [
        "# CLI reference",
        "",
        f"Generated from the Click commands by `{REGENERATE}`; do not edit by hand",
        "(tests/test_docs.py fails when this page and the commands disagree).",
        "Every command also answers `--help`.",
        "",
        " · ".join(f"[`{full}`](#{_anchor(full)})" for full, _, _ in commands),
        "",
    ]
    for full, command, ctx in commands:
        lines += _command_section(full, command, ctx)
    return "\n".join(lines).rstrip() + "\n"


def _command_section(full: str, command: click.Command, ctx: click.Context) -> list[str]:
    usage = " ".join([full, *command.collect_usage_pieces(ctx)])
    lines = [f"## {full}", "", "```text", f"Usage: {usage}", "```", ""]
    help_text = _help(command)
    if help_text:
        lines += [_escape(help_text), ""]
    if isinstance(command, click.Group):
        names = command.list_commands(ctx)
        lines += ["| command | what it does |", "| --- | --- |"]
        for sub in names:
            child = command.get_command(ctx, sub)
            if child is not None and not child.hidden:
                summary = child.short_help or _help(child).split("\n\n")[0]
                lines.append(f"| [`{full} {sub}`](#{_anchor(full + ' ' + sub)}) | {_cell(summary)} |")
        lines.append("")
    arguments = [p for p in command.get_params(ctx) if isinstance(p, click.Argument)]
    if arguments:
        lines += ["Arguments: " + ", ".join(f"`{p.make_metavar(ctx)}`" for p in arguments), ""]
    options = [p for p in command.params if isinstance(p, click.Option) and not p.hidden]
    lines += ["| option | type | default | env var | help |", "| --- | --- | --- | --- | --- |"]
    for option in options:
        lines.append("| " + " | ".join(_option_row(option, ctx)) + " |")
    # The help option from this context's names, not from Command.get_help_option: Click
    # caches that on the command the first time anything asks, and a command parsed
    # without the group's context (a test, the API) would cache plain --help.
    help_flags = ", ".join(f"`{flag}`" for flag in sorted(ctx.help_option_names, key=lambda f: (f.startswith("--"), f)))
    lines += [f"| {help_flags} | `flag` |  |  | Show this message and exit. |", ""]
    return lines


def _option_row(option: click.Option, ctx: click.Context) -> list[str]:
    # Sorted: Click builds the help option's names from a set, whose order changes
    # from one interpreter to the next.
    names = sorted(option.opts, key=lambda flag: (flag.startswith("--"), flag))
    flags = ", ".join(f"`{flag}`" for flag in [*names, *option.secondary_opts])
    if option.is_flag:
        kind = "flag"
    else:
        kind = option.make_metavar(ctx)
        describe = getattr(option.type, "_describe_range", None)  # IntRange, FloatRange
        if describe is not None:
            kind = f"{kind} ({describe()})"
    envvar = option.envvar if isinstance(option.envvar, str) else ", ".join(option.envvar or ())
    return [
        flags,
        f"`{_cell(kind)}`",
        _cell(_default(option, ctx)),
        f"`{envvar}`" if envvar else "",
        _cell(option.help or ""),
    ]


def _default(option: click.Option, ctx: click.Context) -> str:
    """The default as `--help` would show it; empty where there is none to show."""
    show = option.show_default if option.show_default is not None else ctx.show_default
    if isinstance(show, str):
        return show
    value = option.default
    if not show or value is None or value is _UNSET or callable(value):
        return ""
    if option.is_flag and option.secondary_opts:  # --batchnorm/--no-batchnorm
        return option.opts[0] if value else option.secondary_opts[0]
    if option.is_flag and value is False:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def _help(command: click.Command) -> str:
    """The command's help text as Click shows it: dedented, up to a \\f, without \\b markers."""
    return inspect.cleandoc(command.help or "").partition("\f")[0].replace("\b\n", "")


def _anchor(title: str) -> str:
    """GitHub's anchor for a '## title' heading."""
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


def _escape(text: str) -> str:
    """Markdown-safe text: '<' outside `code` would start an HTML tag."""
    parts = text.split("`")
    for i in range(0, len(parts), 2):  # the even parts are outside backticks
        parts[i] = parts[i].replace("<", "&lt;")
    return "`".join(parts)


def _cell(text: str) -> str:
    """One table cell: a single line, with the column separator escaped."""
    return _escape(" ".join(str(text).split())).replace("|", "\\|")


def main() -> None:
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
