"""What one realization left behind, kept as JSON between realizations of the same name."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Record:
    """One realized resource: what it was made from and what it returned."""

    type: str
    name: str
    inputs: dict  # revealed inputs (test state: may hold secrets, file is 0600)
    fingerprint: str  # hash of the inputs plus anything outside them (a build context)
    id: str
    outputs: dict  # as returned to the program (secret wrappers kept)
    seq: int  # creation time in ns, to delete in reverse order


class StateFile:
    """A realization's records keyed by "type::name", saved after every change, and a
    journal of what each run did (files, because the program runs in a forked child)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._journal = path.with_suffix(".journal")
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        raw = json.loads(path.read_text()) if path.exists() else {}
        self._records = {key: Record(**rec) for key, rec in raw.items()}

    def get(self, key: str) -> Record | None:
        with self._lock:
            return self._records.get(key)

    def put(self, key: str, record: Record) -> None:
        with self._lock:
            self._records[key] = record
            self._save()

    def remove(self, key: str) -> None:
        with self._lock:
            self._records.pop(key, None)
            self._save()

    def records(self) -> list[Record]:
        with self._lock:
            return list(self._records.values())

    def journal(self, typ: str, name: str, action: str) -> None:
        """Append what happened to a resource to this realization's journal."""
        with self._lock, self._journal.open("a") as f:
            f.write(json.dumps([typ, name, action]) + "\n")

    def events(self) -> dict[tuple[str, str], str]:
        """(type, name) -> the last thing that happened to it since `clear_journal`."""
        if not self._journal.exists():
            return {}
        rows = (json.loads(line) for line in self._journal.read_text().splitlines())
        return {(typ, name): action for typ, name, action in rows}

    def clear_journal(self) -> None:
        self._journal.unlink(missing_ok=True)

    def _save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({k: asdict(r) for k, r in self._records.items()}, f, indent=1, sort_keys=True)
        tmp.replace(self.path)
