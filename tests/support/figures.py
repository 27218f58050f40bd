"""Figures the Docker tests measure: printed past pytest's capture, so they appear in every CI
log, and appended to the file $DJANGOSTACK_FIGURES names, when set: scripts/test.sh runs the
Docker layer in parallel workers (pytest-xdist), whose prints never reach the terminal, and
prints that file after the run."""

from __future__ import annotations

import os

import pytest


def report(capsys: pytest.CaptureFixture[str], topic: str, line: str) -> None:
    text = f"[{topic}] {line}"
    with capsys.disabled():
        print(f"\n{text}")
    if path := os.environ.get("DJANGOSTACK_FIGURES"):
        with open(path, "a", encoding="utf-8") as figures:  # one line per write: no tearing
            figures.write(text + "\n")
