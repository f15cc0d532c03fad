"""Small pieces of English shared by the tables, reports and messages (standard library only)."""

from __future__ import annotations


def counted(count: int, word: str) -> str:
    """'1 run', '3 runs': a count and its noun, plural unless the count is one."""
    return f"{count} {word}{'s' if count != 1 else ''}"


def did_you_mean(value, choices) -> str:
    """" Did you mean 'init'?" for a value close to one of `choices` (a typo, a plural),
    else "": appended to a message that lists the choices."""
    import difflib

    close = difflib.get_close_matches(str(value).lower(), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""
