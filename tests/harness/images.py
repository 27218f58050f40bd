"""pulumi-docker-build `Image`, built by `docker buildx build` on the local engine."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from docker.utils.build import exclude_paths

from .kinds import Context, Kind
from .spec import Spec, UnsupportedInput
from .state import Record

TIMEOUT_SECONDS = 1800
# Set (by `realize(docker_host=...)`) when the Docker objects live on another engine: the
# engine builds run on (empty: the default socket), as pulumi-docker-build's own host setting.
BUILD_HOST_ENV = "HARNESS_BUILD_DOCKER_HOST"


def _build_env() -> dict[str, str] | None:
    """The environment of `docker buildx build`: this process's, with DOCKER_HOST pointing at
    the build engine when the Docker objects go elsewhere."""
    if BUILD_HOST_ENV not in os.environ:
        return None
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    if env[BUILD_HOST_ENV]:
        env["DOCKER_HOST"] = env[BUILD_HOST_ENV]
    return env


class BuildFailed(Exception):
    pass


def context_hash(context: str, dockerfile: str | None) -> str:
    """Hash of the files the build can see (.dockerignore applied) and of the Dockerfile,
    like the provider's `contextHash`: a source change is a change of the image resource."""
    root = Path(context)
    ignore = root / ".dockerignore"
    patterns = []
    if ignore.exists():
        lines = (line.strip() for line in ignore.read_text().splitlines())
        patterns = [line for line in lines if line and not line.startswith("#")]
    digest = hashlib.sha256()
    for rel in sorted(exclude_paths(str(root), patterns)):
        path = root / rel
        if path.is_file() and not path.is_symlink():
            digest.update(f"{rel}\0{path.stat().st_mode & 0o777:o}\0".encode())
            digest.update(path.read_bytes())
    if dockerfile:
        digest.update(Path(dockerfile).read_bytes())
    return digest.hexdigest()


def _cache_ref(entry: Spec, direction: str) -> str:
    local, registry = entry.obj("local"), entry.obj("registry")
    entry.expect("disabled", False)
    if local:
        if direction == "from":
            return f"type=local,src={local.require('src')}"
        local.get("compression")
        local.get("compressionLevel")
        local.get("forceCompression")
        ignore_error = str(local.get("ignoreError", False)).lower()
        mode = local.get("mode", "min")
        return f"type=local,dest={local.require('dest')},mode={mode},ignore-error={ignore_error}"
    if registry:
        if direction == "from":
            return f"type=registry,ref={registry.require('ref')}"
        return f"type=registry,ref={registry.require('ref')},mode={registry.get('mode', 'min')}"
    if direction == "to" and entry.obj("inline") is not None:
        return "type=inline"
    raise UnsupportedInput(f"cache{direction.title()} entry {entry._data} is not implemented")


class BuildxImage(Kind):
    """Rebuilt in place when its inputs or its context change; never deleted (a cache)."""

    def fingerprint(self, inputs: dict) -> str:
        dockerfile = (inputs.get("dockerfile") or {}).get("location")
        return context_hash(inputs["context"]["location"], dockerfile)

    def in_place(self, old: Record, new_inputs: dict) -> bool:
        return True

    def prepare(self, spec: Spec) -> dict[str, Any]:
        context = spec.obj("context")
        dockerfile = spec.obj("dockerfile")
        spec.get("buildOnPreview")  # the mocks never preview
        spec.expect("network", "default")
        spec.expect("pull", False)
        spec.expect("exec", False)
        for unsupported in ("builder", "addHosts", "ssh", "registries", "platforms"):
            spec.expect(unsupported)
        load = spec.get("load", False)
        for export in spec.objs("exports"):
            docker_export = export.obj("docker")
            if docker_export is None:
                raise UnsupportedInput(f"image export {export._data} is not implemented")
            for key in (
                "ociMediaTypes",
                "tar",
                "compression",
                "forceCompression",
                "compressionLevel",
            ):
                docker_export.get(key)  # irrelevant when loading into the local engine
            load = True
        args = ["--progress", "plain"]
        if dockerfile and dockerfile.get("inline"):
            args += ["--file", "-"]
        elif dockerfile:
            args += ["--file", dockerfile.require("location")]
        if spec.get("target"):
            args += ["--target", spec.get("target")]
        for key, value in sorted(spec.get("buildArgs", {}).items()):
            args += ["--build-arg", f"{key}={value}"]
        for key, value in sorted(spec.get("labels", {}).items()):
            args += ["--label", f"{key}={value}"]
        tags = spec.get("tags", [])
        for tag in tags:
            args += ["--tag", tag]
        for entry in spec.objs("cacheFrom"):
            args += ["--cache-from", _cache_ref(entry, "from")]
        for entry in spec.objs("cacheTo"):
            args += ["--cache-to", _cache_ref(entry, "to")]
        if spec.get("noCache", False):
            args.append("--no-cache")
        push = spec.get("push", False)
        if load:
            args.append("--load")
        if push:
            args.append("--push")
        context.expect("named")
        return {
            "args": args,
            "context": context.require("location"),
            "inline": dockerfile.get("inline") if dockerfile else None,
            "secrets": spec.get("secrets", {}),
            "tags": tags,
            "push": push,
            "hash": self.fingerprint(spec._data),
        }

    def create(self, plan: dict[str, Any], ctx: Context) -> tuple[str, dict]:
        with tempfile.TemporaryDirectory(prefix="harness-build-") as tmp:
            args = list(plan["args"])
            # Secret values go to private temp files, handed over as BuildKit secrets.
            for key, value in sorted(plan["secrets"].items()):
                path = Path(tmp) / f"secret-{key}"
                path.write_text(value)
                os.chmod(path, 0o600)
                args += ["--secret", f"id={key},src={path}"]
            label = next(iter(ctx.labels.items()))
            metadata = Path(tmp) / "metadata.json"
            proc = subprocess.run(
                [
                    "docker",
                    "buildx",
                    "build",
                    *args,
                    "--label",
                    "=".join(label),
                    "--metadata-file",
                    str(metadata),
                    plan["context"],
                ],
                input=plan["inline"],
                env=_build_env(),
                capture_output=True,
                text=True,
                timeout=TIMEOUT_SECONDS,
                check=False,
            )
            if proc.returncode != 0:
                raise BuildFailed(f"docker buildx build failed:\n{proc.stderr[-6000:]}")
            meta = json.loads(metadata.read_text())
        digest = meta.get("containerimage.digest", "")
        ref = plan["tags"][0] if plan["tags"] else ""
        if plan["push"] and ref:
            ref = f"{ref.split('@')[0]}@{digest}"
        return digest or meta.get("containerimage.config.digest", ""), {
            "digest": digest,
            "ref": ref,
            "contextHash": plan["hash"],
        }

    def update(self, old: Record, plan: dict[str, Any], ctx: Context) -> tuple[str, dict]:
        return self.create(plan, ctx)
