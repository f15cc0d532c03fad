"""Bad input: one line naming the problem, a non-zero exit, no traceback, nothing written."""

from __future__ import annotations

import pytest
from conftest import assert_clean_refusal, assert_usage_refused, invoke, tree

from dlcli.cli import cli

BAD_XOR = [
    (["--layers", "0"], "--layers"),
    (["--units", "0"], "--units"),
    (["--epochs", "0"], "--epochs"),
    (["--epochs", "-5"], "--epochs"),
    (["--lr", "0"], "--lr"),
    (["--lr", "-0.1"], "--lr"),
    (["--activation", "sigmoidal"], "sigmoid"),  # lists the valid names
    (["--init", "xavierr"], "xavier"),
    (["--optimizer", "adamm"], "adam"),
    (["--name", "../escape"], "invalid run name"),
    (["--name", "a/b"], "invalid run name"),
    (["--log-every", "0"], "--log-every"),
]


@pytest.mark.parametrize("args,needle", BAD_XOR)
def test_bad_xor_options(runner, workdir, args, needle):
    assert_usage_refused(runner, workdir, ["xor", *args], needle)


@pytest.mark.parametrize("option", ["--logdir", "--checkpoint-dir"])
def test_unwritable_output_folder(runner, workdir, option):
    (workdir / "a-file").write_text("not a folder")
    before = tree(workdir)
    result = runner.invoke(cli, ["xor", "--epochs", "5", option, "a-file/sub"])
    assert_clean_refusal(result, option, "a-file", exit_code=1)
    assert tree(workdir) == before


def test_existing_run_name_is_refused_with_a_way_forward(runner, workdir):
    invoke(runner, "xor", "--epochs", "5", "--name", "taken", "--json")
    before = tree(workdir)
    result = runner.invoke(cli, ["xor", "--epochs", "5", "--name", "taken"])
    assert_clean_refusal(result, "already exists", "dlcli resume", "--name", exit_code=1)
    assert tree(workdir) == before


def test_logdir_of_another_run_is_never_mixed_in(runner, workdir):
    invoke(runner, "xor", "--epochs", "5", "--name", "mine", "--checkpoint-dir", "ck1", "--json")
    result = runner.invoke(
        cli, ["xor", "--epochs", "5", "--name", "mine", "--checkpoint-dir", "ck2"]
    )
    assert_clean_refusal(result, "already exists")
    assert not (workdir / "ck2" / "mine").exists()


def test_unexpected_errors_are_one_line_without_debug_and_never_pass_as_a_refusal(runner, monkeypatch):
    from dlcli.core import session

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(session, "train", broken)
    result = runner.invoke(cli, ["xor", "--epochs", "5"])
    assert result.exit_code == 1
    lines = (result.stdout + result.stderr).splitlines()
    assert lines == [
        "Error: internal error: RuntimeError: boom (run `dlcli --debug ...` for the traceback and please report it)"
    ]
    # A crash is not a clean refusal, however tidy its one line looks.
    with pytest.raises(AssertionError, match="internal error"):
        assert_clean_refusal(result)
    debug = runner.invoke(cli, ["--debug", "xor", "--epochs", "5"])
    assert isinstance(debug.exception, RuntimeError)
    with pytest.raises(AssertionError, match="crashed instead of refusing"):
        assert_clean_refusal(debug)


def test_the_refusal_helper_rejects_an_exception_that_escapes_click(runner):
    import click

    @click.command()
    def explodes():
        raise ValueError("escaped")

    result = runner.invoke(explodes, [])
    assert result.exit_code == 1 and isinstance(result.exception, ValueError)
    assert "Traceback" not in result.output  # what an output-only check would miss
    with pytest.raises(AssertionError, match="ValueError: escaped"):
        assert_clean_refusal(result)
