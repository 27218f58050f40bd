"""Which files of a build context Docker sends to the build (.dockerignore), for the context hash
(components/image.py) and the dependency check (components/deps.py)."""

from __future__ import annotations

import fnmatch
from pathlib import Path


def ignore_patterns(context: Path) -> list[str]:
    """The patterns of context/.dockerignore (none when there is no such file)."""
    ignore = context / ".dockerignore"
    if not ignore.is_file():
        return []
    lines = (line.strip() for line in ignore.read_text().splitlines())
    return [line.rstrip("/") for line in lines if line and not line.startswith("#")]


def ignored(path: str, patterns: list[str]) -> bool:
    """.dockerignore semantics, roughly: last matching pattern wins, `!` re-includes, a pattern
    matches a path or any of its parent directories, `**/` matches any depth."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern[1:] if negate else pattern
        globs = {body, body.removeprefix("**/")}
        if any(
            fnmatch.fnmatchcase(c, g) or (fnmatch.fnmatchcase(c, f"*/{g}") and g != body)
            for c in candidates
            for g in globs
        ):
            excluded = not negate
    return excluded
