"""The docs cannot drift from the CLI: the generated reference is current, every
`dlcli ...` line the docs show parses, the README stays short, and links resolve.

Nothing here trains or imports TensorFlow: command lines go through Click's parser only
(a fresh interpreter checks that TensorFlow stays out).
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import click
import pytest
from conftest import SRC, assert_python_runs, subprocess_env

README = SRC / "README.md"
DOCS = SRC / "docs"
README_LIMIT = 12_288  # bytes: a page a newcomer reads in five minutes

# `$ ` is the console prompt; NAME=value words before the command set its environment.
_ENV_WORD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
# What ends the dlcli part of a shell line: a pipe, a redirection, `&&`, `;`, `&`.
_OPERATOR = re.compile(r"^[|<>&;]")


def doc_files() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]  # docs/papers/ too


def command_lines(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line number, the line as shown, dlcli's arguments) for every dlcli command line
    in the fenced code blocks of `path`: `\\` continuations joined, comments stripped,
    stopped at the first shell operator."""
    found = []
    fence = None
    pending, start = "", 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        marker = re.match(r"^\s*(```|~~~)", line)
        if marker and (fence is None or marker.group(1) == fence):
            fence = marker.group(1) if fence is None else None
            pending = ""
            continue
        if fence is None:
            continue
        if not pending:
            start = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical, pending = pending + line, ""
        args = _dlcli_arguments(logical)
        if args is not None:
            found.append((start, logical.strip(), args))
    return found


def _dlcli_arguments(line: str) -> list[str] | None:
    """The arguments after `dlcli` when `line` runs dlcli, else None."""
    text = line.strip()
    if text.startswith("$ "):
        text = text[2:]
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        words = list(lexer)
    except ValueError:  # an unclosed quote: not a command line
        return None
    while words and _ENV_WORD.match(words[0]):
        words.pop(0)
    if not words or words[0] != "dlcli":
        return None
    args = []
    for word in words[1:]:
        if _OPERATOR.match(word):
            break
        args.append(word)
    return args


def parse_error(args: list[str]) -> str | None:
    """Click's message when `dlcli ARGS` does not parse, else None. Parses only:
    option callbacks run (they check values), no command body does."""
    from dlcli.cli import cli

    try:
        with cli.make_context("dlcli", list(args), resilient_parsing=False) as ctx:
            # Click >= 8.2 keeps the subcommand's words in _protected_args.
            protected = ctx._protected_args if hasattr(ctx, "_protected_args") else ctx.protected_args
            rest = [*protected, *ctx.args]
            if not rest:
                return "no command after `dlcli`"
            name, command, rest = cli.resolve_command(ctx, rest)
            with command.make_context(name, rest, parent=ctx) as sub:
                # resume collects unknown words to refuse them with a better message.
                for param in command.params:
                    if param.type is click.UNPROCESSED and sub.params.get(param.name):
                        return f"unexpected arguments {list(sub.params[param.name])}; {name} refuses them"
    except click.exceptions.Exit:  # --help, --version
        return None
    except click.UsageError as exc:
        return exc.format_message()
    return None


def all_parse_failures() -> list[str]:
    failures = []
    for path in doc_files():
        for number, shown, args in command_lines(path):
            message = parse_error(args)
            if message:
                failures.append(f"{path.relative_to(SRC)}:{number}: `{shown}` does not parse: {message}")
    return failures


# -- the generated CLI reference ------------------------------------------------------


def test_the_cli_reference_is_generated_from_the_commands():
    from dlcli import clidoc

    assert (DOCS / "cli.md").read_text(encoding="utf-8") == clidoc.render(), (
        f"docs/cli.md is out of date with the Click commands; regenerate it: {clidoc.REGENERATE}"
    )


@pytest.mark.parametrize("hash_seed", ["1", "2"])
def test_the_cli_reference_command_gives_the_same_page_everywhere(hash_seed):
    """`python -m dlcli.clidoc` in a fresh interpreter, a narrow terminal and another
    string-hash seed (Click keeps some names in sets) writes the committed page."""
    env = {**subprocess_env(), "COLUMNS": "40", "PYTHONHASHSEED": hash_seed}
    out = subprocess.run([sys.executable, "-m", "dlcli.clidoc"], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout == (DOCS / "cli.md").read_text(encoding="utf-8"), "the page differs from docs/cli.md"


# -- command lines shown in the docs --------------------------------------------------


def test_every_dlcli_line_in_the_docs_parses():
    lines = [(path, line) for path in doc_files() for line in command_lines(path)]
    assert len(lines) >= 20, f"found only {len(lines)} dlcli lines: is the extraction broken?"
    failures = all_parse_failures()
    assert not failures, "\n".join(failures)


def test_parsing_the_docs_trains_nothing_and_never_imports_tensorflow():
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(SRC / 'tests')!r})\n"
        "import test_docs\n"
        "failures = test_docs.all_parse_failures()\n"
        "assert not failures, failures\n"
        "assert 'tensorflow' not in sys.modules, 'parsing the docs imported TensorFlow'\n"
    )
    assert_python_runs(code)


@pytest.mark.parametrize(
    "shown, expected",
    [
        ("$ dlcli xor --layers 2   # a comment", ["xor", "--layers", "2"]),
        ("dlcli mnist --json | jq .accuracy", ["mnist", "--json"]),
        ("dlcli board --list > runs.txt", ["board", "--list"]),
        ("dlcli xor && dlcli board", ["xor"]),
        ("FOO='a b' dlcli mnist --name x; ls", ["mnist", "--name", "x"]),
        ("dask worker tcp://head:8786", None),
        ("| x1 | x2 |", None),
    ],
)
def test_command_lines_are_read_as_a_shell_would(shown, expected):
    assert _dlcli_arguments(shown) == expected


def test_a_doc_line_that_drifted_from_the_cli_is_named(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "text\n\n```console\n$ dlcli xor --layers 2\n$ dlcli mnist --epochs 2 \\\n"
        "    --no-such-flag   # drifted\n$ dlcli compare --vary units=8,16 --seeds 0\n"
        "$ dlcli resume checkpoints/run --units 8\n$ dlcli fit\n```\n",
        encoding="utf-8",
    )
    lines = command_lines(page)
    assert [number for number, _, _ in lines] == [4, 5, 7, 8, 9]
    errors = {number: parse_error(args) for number, _, args in lines}
    assert errors[4] is None
    assert "--no-such-flag" in errors[5]
    assert "--seeds" in errors[7] and "0" in errors[7]
    assert "--units" in errors[8]
    assert "fit" in errors[9]


# -- the README and links ---------------------------------------------------------------


def test_the_readme_is_short():
    size = len(README.read_bytes())
    assert size <= README_LIMIT, f"README.md is {size} bytes; keep it under {README_LIMIT} (move detail to docs/)"


_LINK = re.compile(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|<img[^>]*\ssrc=\"([^\"]+)\"")


def _anchors(path: Path) -> set[str]:
    """GitHub's heading anchors of a Markdown file."""
    anchors, fenced = set(), False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            title = line.lstrip("#").strip()
            anchors.add(re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-"))
    return anchors


def test_every_relative_link_points_at_an_existing_file():
    broken = []
    for path in doc_files():
        text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
        for match in _LINK.finditer(text):
            target = match.group(1) or match.group(2)
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            file_part, _, fragment = target.partition("#")
            resolved = (path.parent / file_part).resolve() if file_part else path
            where = f"{path.relative_to(SRC)}: ({target})"
            if not resolved.exists():
                broken.append(f"{where}: no such file")
            elif fragment and resolved.suffix == ".md" and fragment not in _anchors(resolved):
                broken.append(f"{where}: no heading #{fragment} in {resolved.name}")
    assert not broken, "\n".join(broken)
