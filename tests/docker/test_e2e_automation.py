"""The same prod realization through the real Pulumi engine (Automation API, local file
backend), where scripts/toolchain.sh can provide the whole toolchain (CLI, Python language host,
provider plugins): `pulumi up`, the site answers, `pulumi destroy`."""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest
import requests
import urllib3

from tests.docker.stack_config import SECRET_KEYS, config_for
from tests.program import ROOT

# Offline, the script exits 3 within seconds, its report naming each missing piece and the
# module proxy's answer for it; the harness e2e tests realize the same program meanwhile.
TOOLCHAIN = subprocess.run(
    ["bash", str(ROOT / "scripts" / "toolchain.sh")],
    capture_output=True,
    text=True,
    timeout=1800,
    check=False,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        TOOLCHAIN.returncode != 0,
        reason="the Pulumi toolchain cannot be had here: " + TOOLCHAIN.stderr.strip(),
    ),
]


def test_pulumi_up_serves_the_site_and_destroy_removes_it(tmp_path) -> None:
    from pulumi import automation as auto

    name = f"e2e-auto-{uuid.uuid4().hex[:6]}"
    env = {
        "PATH": TOOLCHAIN.stdout.strip() + os.pathsep + os.environ["PATH"],
        "PULUMI_BACKEND_URL": f"file://{tmp_path}",
        "PULUMI_CONFIG_PASSPHRASE": "e2e",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
    }
    stack = auto.create_or_select_stack(
        stack_name=name, work_dir=str(ROOT), opts=auto.LocalWorkspaceOptions(env_vars=env)
    )
    config = config_for("prod", name)
    stack.set_all_config(
        {
            f"djangostack:{k}": auto.ConfigValue(
                str(v).lower() if isinstance(v, bool) else str(v), secret=k in SECRET_KEYS
            )
            for k, v in config.items()
        }
    )
    try:
        outputs = stack.up(on_output=print).outputs
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        session = requests.Session()
        session.trust_env = False
        response = session.get(f"{outputs['url'].value}/health/", verify=False, timeout=10)
        assert response.status_code == 200
    finally:
        stack.destroy(on_output=print)
        stack.workspace.remove_stack(name)
