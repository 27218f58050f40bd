"""`DockerEngineMocks`: Pulumi mocks that realize each registration on the real Docker engine."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pulumi

from .kinds import Context, Kind
from .spec import Spec, UnsupportedInput, reveal
from .state import Record, StateFile

CREATED, UPDATED, REPLACED, UNCHANGED, DELETED, FAILED = (
    "created",
    "updated",
    "replaced",
    "unchanged",
    "deleted",
    "failed",
)


def _kinds() -> dict[str, Kind]:
    from .commands import LocalCommand
    from .containers import Container
    from .crypto import PrivateKey, RandomPassword, RandomString, SelfSignedCert
    from .images import BuildxImage
    from .objects import Network, Secret, Volume
    from .services import Service

    return {
        "docker-build:index:Image": BuildxImage(),
        "docker:index/network:Network": Network(),
        "docker:index/volume:Volume": Volume(),
        "docker:index/secret:Secret": Secret(),
        "docker:index/container:Container": Container(),
        "docker:index/service:Service": Service(),
        "command:local:Command": LocalCommand(),
        "random:index/randomPassword:RandomPassword": RandomPassword(),
        "random:index/randomString:RandomString": RandomString(),
        "tls:index/privateKey:PrivateKey": PrivateKey(),
        "tls:index/selfSignedCert:SelfSignedCert": SelfSignedCert(),
    }


class DockerEngineMocks(pulumi.runtime.Mocks):
    """Performs every registration for real, in the order the SDK gives.

    State lives in `<state_dir>/<realization>.json`: a registration whose inputs (and, for
    images, build context) are unchanged since the last realization touches nothing and
    returns the stored id and outputs; a changed one is updated in place or replaced the
    way its provider does. What happened is journaled per resource (see `StateFile`).
    """

    def __init__(self, realization: str, state_dir: Path) -> None:
        self.ctx = Context(realization)
        self.state = StateFile(Path(state_dir) / f"{realization}.json")
        self.kinds = _kinds()

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        if not args.custom:  # component resources only group their children
            return f"{args.name}-component", dict(args.inputs)
        kind = self.kinds.get(args.typ)
        if kind is None:
            raise UnsupportedInput(f"resource type {args.typ} ({args.name}) is not implemented")
        try:
            return self._apply(kind, args)
        except Exception:
            self.state.journal(args.typ, args.name, FAILED)
            raise

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list | None]:
        raise UnsupportedInput(f"invoke {args.token} is not implemented by the harness")

    def delete_unregistered(self, registered: set[tuple[str, str]]) -> None:
        """Delete, newest first, what state holds and the last run did not register."""
        records = self.state.records()
        stale = [r for r in records if (r.type, r.name) not in registered]
        for record in sorted(stale, key=lambda r: r.seq, reverse=True):
            self.kinds[record.type].delete(record, self.ctx)
            self.state.remove(f"{record.type}::{record.name}")
            self.state.journal(record.type, record.name, DELETED)

    def _apply(self, kind: Kind, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        key = f"{args.typ}::{args.name}"
        inputs = reveal(args.inputs)
        fingerprint = hashlib.sha256(
            json.dumps([inputs, kind.fingerprint(inputs)], sort_keys=True).encode()
        ).hexdigest()
        old = self.state.get(key)
        if old and old.fingerprint == fingerprint:
            self.state.journal(args.typ, args.name, UNCHANGED)
            return old.id, old.outputs
        spec = Spec(inputs, f"{args.typ} {args.name}", args.name)
        plan = kind.prepare(spec)
        spec.check()  # before any side effect
        if old and kind.in_place(old, inputs):
            real_id, computed = kind.update(old, plan, self.ctx)
            action, seq = UPDATED, old.seq
        else:
            if old and kind.delete_before_replace:
                kind.delete(old, self.ctx)
            real_id, computed = kind.create(plan, self.ctx)
            if old and not kind.delete_before_replace:
                kind.delete(old, self.ctx)
            action, seq = (REPLACED if old else CREATED), time.time_ns()
        outputs = {**args.inputs, **computed}
        self.state.put(key, Record(args.typ, args.name, inputs, fingerprint, real_id, outputs, seq))
        self.state.journal(args.typ, args.name, action)
        return real_id, outputs
