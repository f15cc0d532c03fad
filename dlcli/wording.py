"""Small pieces of English shared by the tables, reports and messages (standard library only)."""

from __future__ import annotations


def counted(count: int, word: str) -> str:
    """'1 run', '3 runs': a count and its noun, plural unless the count is one."""
    return f"{count} {word}{'s' if count != 1 else ''}"
