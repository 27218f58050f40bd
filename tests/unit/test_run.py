"""One-off commands (automation/run.py): the arguments, the run spec read from the migration
step's container, and the `docker run` it becomes; and what of the program it relies on."""

from __future__ import annotations

import pytest
from conftest import NETWORK, env_of, network_names, step

from automation.run import docker_command, parse, run_spec
from components import app, hardening, jobs, renderers

OUTPUTS = {
    "namePrefix": "shop-prod",
    "imageRef": "shop/web:1.2.0-0123456789ab",
    "backendNetwork": "shop-prod-backend",
    "databaseUrl": "postgres://app:secret@postgres:5432/app",  # never read
}
IMAGE_ENV = ["PATH=/opt/venv/bin:/usr/bin", "DJANGO_SETTINGS_MODULE=config.settings.production"]
# `docker inspect` of a migration step's container, the parts the run spec reads.
TEMPLATE = {
    "Image": "sha256:abc",
    "Config": {
        "User": "10001:10001",
        "Env": [
            *IMAGE_ENV,
            "REDIS_URL=redis://redis:6379/0",
            "SECRET_KEY_FILE=/run/secrets/SECRET_KEY",
            "DJANGO_ALLOWED_HOSTS=shop.example.com",
        ],
        "Labels": {
            hardening.STACK_LABEL: "prod",
            hardening.PROJECT_LABEL: "djangostack",
            hardening.ROLE_LABEL: "job",
            renderers.STEP_LABEL: "shop-prod-migrate",
        },
    },
    "HostConfig": {
        "Mounts": [
            {"Type": "volume", "Source": "shop-prod-media", "Target": app.MEDIA_DIR},
            {
                "Type": "volume",
                "Source": "shop-prod-migrate-files",
                "Target": renderers.SECRETS_DIR,
                "ReadOnly": True,
            },
        ],
        "Tmpfs": {"/tmp": hardening.TMPFS_OPTIONS},
        "Memory": 512 * 1024 * 1024,
        "MemorySwap": 512 * 1024 * 1024,
        "NanoCpus": 1_000_000_000,
    },
}
COMMAND = ("python", "manage.py", "createsuperuser")


def spec():
    return run_spec(OUTPUTS, TEMPLATE, IMAGE_ENV)


def name_of(argv: list[str]) -> str:
    return argv[argv.index("--name") + 1]


def flags(argv: list[str], name: str) -> list[str]:
    """The values of every `--name=value` flag."""
    return [a.split("=", 1)[1] for a in argv if a.startswith(f"--{name}=")]


def test_the_command_is_everything_after_the_double_dash():
    args = parse(["prod", "--env", "A=1", "--env", "B", "--", "python", "-c", "print(1)", "--x"])
    assert args.stack == "prod"
    assert args.env == ("A=1", "B")
    assert args.command == ("python", "-c", "print(1)", "--x")


@pytest.mark.parametrize(
    "argv",
    [
        ["prod"],  # no command
        ["prod", "--"],  # an empty one
        ["prod", "python", "manage.py", "shell"],  # no `--`
        ["prod", "--env", "1A=x", "--", "true"],  # not a variable name
        ["--", "true"],  # no stack
    ],
)
def test_arguments_without_a_command_or_with_a_bad_name_are_refused(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        parse(argv)
    assert exited.value.code == 2
    assert "usage: scripts/run.sh <stack>" in capsys.readouterr().err


def test_the_spec_is_the_release_and_what_the_deploy_gave_the_app_step():
    run = spec()
    assert (run.image, run.network, run.user) == (
        OUTPUTS["imageRef"],
        OUTPUTS["backendNetwork"],
        "10001:10001",
    )
    # The image's own ENV stays out (the image sets it); the deploy's is all there.
    assert run.env == (
        "REDIS_URL=redis://redis:6379/0",
        "SECRET_KEY_FILE=/run/secrets/SECRET_KEY",
        "DJANGO_ALLOWED_HOSTS=shop.example.com",
    )
    assert run.mounts == (
        f"type=volume,source=shop-prod-media,target={app.MEDIA_DIR}",
        f"type=volume,source=shop-prod-migrate-files,target={renderers.SECRETS_DIR},readonly",
    )
    assert run.tmpfs == ("/tmp",)
    # Labelled as the stack's, with a role of its own: no step, no workload.
    assert run.labels == {
        hardening.STACK_LABEL: "prod",
        hardening.PROJECT_LABEL: "djangostack",
        hardening.ROLE_LABEL: hardening.RUN_ROLE,
    }


def test_docker_run_is_fresh_removed_hardened_and_on_the_backend_only():
    argv = docker_command(spec(), COMMAND, tty=False, suffix="a1b2c3")
    assert argv[:6] == ["docker", "run", "--rm", "--name", "shop-prod-run-a1b2c3", "--interactive"]
    assert "--tty" not in argv
    # The command through the app's entrypoint (secretEnv names exported from their files).
    image_at = argv.index(OUTPUTS["imageRef"])
    assert argv[image_at + 1 :] == [app.ENTRYPOINT, *COMMAND]
    assert argv[argv.index("--network") + 1] == OUTPUTS["backendNetwork"]
    assert argv.count("--network") == 1
    # The hardening every container of the stack gets, from components/hardening.py.
    assert "--read-only" in argv
    assert flags(argv, "cap-drop") == list(hardening.CAP_DROP)
    assert flags(argv, "security-opt") == list(hardening.SECURITY_OPTS)
    assert flags(argv, "tmpfs") == [f"/tmp:{hardening.TMPFS_OPTIONS}"]
    assert flags(argv, "ulimit") == [f"nofile={hardening.NOFILE}:{hardening.NOFILE}"]
    assert flags(argv, "pids-limit") == [str(app.PIDS)]
    assert flags(argv, "memory") == flags(argv, "memory-swap") == [str(512 * 1024 * 1024)]
    assert flags(argv, "cpus") == ["1"]
    assert flags(argv, "log-driver") == [hardening.LOG_DRIVER]
    assert flags(argv, "mount") == list(spec().mounts)
    assert flags(argv, "label") == [
        f"{hardening.PROJECT_LABEL}=djangostack",
        f"{hardening.ROLE_LABEL}={hardening.RUN_ROLE}",
        f"{hardening.STACK_LABEL}=prod",
    ]
    assert "--no-healthcheck" in argv
    assert not any(a.startswith(("--privileged", "--publish", "-p", "--cap-add")) for a in argv)


def test_a_terminal_on_both_sides_gets_a_tty_and_a_remote_engine_is_addressed():
    argv = docker_command(spec(), COMMAND, tty=True, host="ssh://manager")
    assert argv[:3] == ["docker", "-H", "ssh://manager"]
    assert "--interactive" in argv and "--tty" in argv
    names = {name_of(docker_command(spec(), COMMAND, tty=True)) for _ in range(3)}
    assert len(names) == 3 and all(n.startswith("shop-prod-run-") for n in names), names


def test_env_replaces_the_apps_value_of_a_name_and_passes_names_through():
    argv = docker_command(
        spec(), COMMAND, ["DJANGO_ALLOWED_HOSTS=localhost", "DJANGO_SUPERUSER_PASSWORD"], tty=False
    )
    assert flags(argv, "env") == [
        "REDIS_URL=redis://redis:6379/0",
        "SECRET_KEY_FILE=/run/secrets/SECRET_KEY",
        "DJANGO_ALLOWED_HOSTS=localhost",
        # Its value comes from the caller's environment: not on any command line.
        "DJANGO_SUPERUSER_PASSWORD",
    ]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_template_is_the_migration_step_with_the_apps_secrets_and_uploads(stack, request):
    result = request.getfixturevalue(stack)
    migration = step(result, "migration-run")
    inputs = migration.plain_inputs
    # automation/run.py finds it by this name.
    assert inputs["name"] == f"{result.outputs['namePrefix']}-{jobs.MIGRATION_STEP}"
    targets = {m["target"]: m.get("readOnly", False) for m in inputs["mounts"]}
    assert targets == {app.MEDIA_DIR: False, renderers.SECRETS_DIR: True}
    assert network_names(result, migration) == {result.outputs["backendNetwork"]}
    assert env_of(migration)["SECRET_KEY_FILE"] == renderers.secret_file("SECRET_KEY")


def test_the_backend_is_attachable_in_swarm_mode(prod):
    # A plain `docker run` (a one-off command, like the one-shot steps) can join an overlay
    # network only when it is attachable.
    (backend,) = [
        n for n in prod.of_type(NETWORK) if n.plain_inputs["name"] == prod.outputs["backendNetwork"]
    ]
    assert (backend.plain_inputs["driver"], backend.plain_inputs["attachable"]) == ("overlay", True)
