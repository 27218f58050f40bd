"""Bring a stack up on this machine's engine for a person to look at, or take it down.

    python -m tests.harness up dev|prod     realize (again) and print the URL
    python -m tests.harness down [dev|prod] destroy, then remove anything still labelled

Uses the test stack config (local stand-in images, free loopback ports, self-signed TLS)
with the repository's own app/ (in dev, edits show without a rebuild). State is kept in
$DJANGOSTACK_LOCAL_STATE (default /var/tmp/djangostack-local) so `up` again is incremental.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from tests.docker.stack_config import SECRET_KEYS, config_for
from tests.program import ROOT

from .realize import destroy, realize
from .teardown import leftovers, teardown

STATE = Path(os.environ.get("DJANGOSTACK_LOCAL_STATE", "/var/tmp/djangostack-local"))


def up(stack: str) -> None:
    name = f"local-{stack}"
    config_file = STATE / f"{name}.config.json"
    # The same ports and secrets on every `up`, so a second one changes nothing.
    if config_file.exists():
        config = json.loads(config_file.read_text())
    else:
        config = config_for(stack, name, ROOT / "app")
        STATE.mkdir(parents=True, exist_ok=True, mode=0o700)
        config_file.write_text(json.dumps(config))
        config_file.chmod(0o600)
    realization = realize(name, stack, config, SECRET_KEYS, STATE)
    for (typ, resource), action in sorted(realization.events.items()):
        print(f"  {action:9} {typ} {resource}")
    print(f"\n{stack} stack is up: {realization.outputs['url']}")


def down(stacks: list[str]) -> None:
    for stack in stacks:
        name = f"local-{stack}"
        destroy(name, STATE)
        teardown(name)
        (STATE / f"{name}.config.json").unlink(missing_ok=True)
        left = leftovers(name)
        print(f"{stack}: {'removed' if not left else 'left behind: ' + ', '.join(left)}")


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "up" and argv[1] in ("dev", "prod"):
        up(argv[1])
        return 0
    if argv and argv[0] == "down" and set(argv[1:]) <= {"dev", "prod"}:
        down(argv[1:] or ["dev", "prod"])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
