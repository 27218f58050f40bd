"""The same prod realization through the real Pulumi engine (Automation API, local file
backend), where a `pulumi` CLI exists: `pulumi up`, the site answers, `pulumi destroy`."""

from __future__ import annotations

import shutil
import uuid

import pytest
import requests
import urllib3

from tests.docker.stack_config import SECRET_KEYS, config_for
from tests.program import ROOT

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("pulumi") is None,
        reason="no pulumi CLI on this machine (no registry ships it here); "
        "the harness e2e tests realize the same program without it",
    ),
]


def test_pulumi_up_serves_the_site_and_destroy_removes_it(tmp_path) -> None:
    from pulumi import automation as auto

    name = f"e2e-auto-{uuid.uuid4().hex[:6]}"
    env = {"PULUMI_BACKEND_URL": f"file://{tmp_path}", "PULUMI_CONFIG_PASSPHRASE": "e2e"}
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
