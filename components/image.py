"""The application image, built with BuildKit through pulumi-docker-build."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_docker_build as docker_build

from components.buildcontext import ignore_patterns, ignored
from components.config import StackConfig


def context_hash(context: Path, dockerfile: Path) -> str:
    """A sha256 over the Dockerfile and every file of the build context that .dockerignore
    keeps (paths and contents): any source change yields a new REVISION build arg, so Pulumi
    (and the unit tests) see the image change."""
    digest = hashlib.sha256()
    digest.update(dockerfile.read_bytes())
    patterns = ignore_patterns(context)
    for file in sorted(p for p in context.rglob("*") if p.is_file()):
        rel = file.relative_to(context).as_posix()
        if ignored(rel, patterns):
            continue
        digest.update(rel.encode() + b"\0")
        digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()


# docker-build hands each secret to `docker buildx` in an environment variable, and Linux caps
# one at 128 KiB: a CA bundle (a host's is about 215 KB) goes in parts the Dockerfile joins.
SECRET_PART_CHARS = 100_000
CA_BUNDLE_IDS = ("ca_bundle", "ca_bundle_2", "ca_bundle_3", "ca_bundle_4")
PEM_END = "-----END CERTIFICATE-----"


def ca_bundle_secrets(bundle: str) -> dict[str, str]:
    """The bundle's certificates split, at certificate boundaries, into at most four secrets
    of at most SECRET_PART_CHARS each (docker/Dockerfile concatenates ca_bundle*)."""
    certificates = [c + PEM_END + "\n" for c in bundle.split(PEM_END) if c.strip()]
    parts = [""]
    for certificate in certificates:
        if parts[-1] and len(parts[-1]) + len(certificate) > SECRET_PART_CHARS:
            parts.append("")
        parts[-1] += certificate.lstrip("\n")
    if len(parts) > len(CA_BUNDLE_IDS):
        raise ValueError(
            f"the CA bundle is too large for the build ({len(bundle)} characters; at most "
            f"{len(CA_BUNDLE_IDS) * SECRET_PART_CHARS})"
        )
    return dict(zip(CA_BUNDLE_IDS, parts, strict=False))


def _optional_build_args(cfg: StackConfig, build_env: Mapping[str, str]) -> dict[str, str]:
    """Build args that exist only when they have something to say: config env/secretEnv at
    build time, what the image adds to the project's dependencies (deps.provided and config
    extraPackages), the project's build commands, and (prod) the served URLs collectstatic
    checks against the settings."""
    extra = [*(item.requirement for item in cfg.provided), *cfg.extra_packages]
    served = {"STATIC_URL": ["staticUrl", cfg.static_url], "MEDIA_URL": ["mediaUrl", cfg.media_url]}
    candidates = {
        "DJANGOSTACK_BUILD_ENV": json.dumps(dict(build_env), sort_keys=True) if build_env else "",
        "EXTRA_REQUIREMENTS": " ".join(extra),
        "DJANGOSTACK_BUILD_COMMANDS": (
            json.dumps([list(c) for c in cfg.build_commands]) if cfg.build_commands else ""
        ),
        "DJANGOSTACK_URLS": json.dumps(served) if cfg.is_prod else "",
    }
    return {name: value for name, value in candidates.items() if value}


def registries(cfg: StackConfig) -> list[docker_build.RegistryArgs] | None:
    """The registry's credentials for a push, when the stack has them."""
    if not (cfg.registry and cfg.registry_password is not None):
        return None
    return [
        docker_build.RegistryArgs(
            address=cfg.registry, username=cfg.registry_username, password=cfg.registry_password
        )
    ]


def builder(cfg: StackConfig) -> dict[str, object]:
    """Through the local `docker buildx` (exec) on the named builder: docker-build's own
    BuildKit client would create a docker-container builder, pulling moby/buildkit."""
    return {"exec_": True, "builder": docker_build.BuilderConfigArgs(name=cfg.buildx_builder)}


@dataclass(frozen=True)
class ProductImage:
    image: docker_build.Image
    tag: str  # <repository>-<suffix>:<12 hex of its files and build args>
    ref: pulumi.Output[str]  # what to run or copy from: by digest when pushed, else the tag


def product_image(
    name: str,
    cfg: StackConfig,
    directory: Path,
    suffix: str,
    opts: pulumi.ResourceOptions,
    build_args: Mapping[str, str] | None = None,
    images: Mapping[str, ProductImage] | None = None,
) -> ProductImage:
    """An image of one of the product's own directories (docker/support, docker/acme,
    docker/backup), tagged by content; pushed when a registry is configured, else loaded into
    the local engine. `images`: build args naming other product images it builds FROM (passed
    by reference, part of the content by tag)."""
    content = context_hash(directory, directory / "Dockerfile")
    if build_args or images:
        key: list[object] = [content, dict(build_args or {})]
        if images:
            key.append({arg: image.tag for arg, image in images.items()})
        content = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
    tag = f"{cfg.image_repository}-{suffix}:{content[:12]}"
    image_refs = {arg: image.ref for arg, image in (images or {}).items()}
    push = bool(cfg.registry)
    image = docker_build.Image(
        name,
        docker_build.ImageArgs(
            context=docker_build.BuildContextArgs(location=str(directory)),
            dockerfile=docker_build.DockerfileArgs(location=str(directory / "Dockerfile")),
            build_args={**(build_args or {}), **image_refs} or None,
            tags=[tag],
            push=push,
            load=not push,  # what runs it, or builds from it, reads it from the local engine
            registries=registries(cfg),
            build_on_preview=cfg.build_on_preview,
            **builder(cfg),
        ),
        opts=opts,
    )
    return ProductImage(image, tag, image.ref if push else image.ref.apply(lambda _: tag))


@dataclass(frozen=True)
class ImageArgs:
    cfg: StackConfig
    # Config env/secretEnv names -> build-time values (stack.build_environment): the runtime
    # build's collectstatic imports settings that may read them. Never a real secret.
    build_env: Mapping[str, str] = field(default_factory=dict)


class Image(pulumi.ComponentResource):
    """Builds `docker/Dockerfile` with context `app/`: target `development` (dev) or
    `runtime` (prod); pushed when a registry is configured, else loaded into the local engine.
    The product's support files (docker/support) are built first as an image of their own and
    passed as SUPPORT_IMAGE. The dependency layout found in appDir (cfg.dependencies) and the
    Debian packages of buildPackages / runtimePackages go in as build args.

    Outputs: `support` (the support image, which the backup image copies the entrypoint
    from), `ref` (what containers run: repo@digest when pushed, else the local tag
    name:<imageTag>-<12 hex of every build input>, so any change is a new reference either way),
    `digest`, `tag` (name:<imageTag>), `revision` (context hash)."""

    def __init__(self, name: str, args: ImageArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("djangostack:index:Image", name, None, opts)
        cfg = args.cfg
        self.revision = context_hash(cfg.app_dir, cfg.dockerfile)
        self.tag = f"{cfg.image_repository}:{cfg.image_tag}"
        push = bool(cfg.registry)
        secrets: dict[str, pulumi.Input[str]] = {}
        if cfg.pip_config_file:
            secrets["pip_conf"] = pulumi.Output.secret(cfg.pip_config_file.read_text())
        if cfg.ca_bundle_file:
            for secret_id, part in ca_bundle_secrets(cfg.ca_bundle_file.read_text()).items():
                secrets[secret_id] = pulumi.Output.secret(part)
        cache_from = cache_to = None
        if cfg.cache_ref:
            cache_from = [
                docker_build.CacheFromArgs(
                    registry=docker_build.CacheFromRegistryArgs(ref=cfg.cache_ref)
                )
            ]
            cache_to = [
                docker_build.CacheToArgs(
                    registry=docker_build.CacheToRegistryArgs(
                        ref=cfg.cache_ref, mode=docker_build.CacheMode.MAX
                    )
                )
            ]
        # The product's support files (docker/support), an image of their own that the
        # Dockerfile copies from: the build context is the project, and the engine's BuildKit
        # has no named contexts. Tagged by content, so a change to them rebuilds the app image.
        self.support = support = product_image(
            f"{name}-support",
            cfg,
            cfg.root / "docker" / "support",
            "support",
            pulumi.ResourceOptions(parent=self),
        )
        build_args = {
            "BASE_IMAGE": cfg.base_image,
            "VERSION": cfg.image_tag,
            "REVISION": self.revision,
            # The image's ENV DJANGO_SETTINGS_MODULE (collectstatic runs with it).
            "DJANGO_SETTINGS_MODULE": cfg.django_settings_module,
            # Which files declare the dependencies and how to install them.
            **cfg.dependencies.build_args(),
            # Debian packages (names checked by the config), space-separated.
            "BUILD_PACKAGES": " ".join(cfg.build_packages),
            "RUNTIME_PACKAGES": " ".join(cfg.runtime_packages),
            # Only when set, so stacks without them keep their build inputs.
            **_optional_build_args(cfg, args.build_env),
        }
        # Local only: a tag unique to everything the build takes (source, build args, the
        # support image, the target), so any change is a new reference for what runs it.
        build_key = hashlib.sha256(
            json.dumps([build_args, support.tag, cfg.is_prod], sort_keys=True).encode()
        ).hexdigest()
        local_tag = f"{self.tag}-{build_key[:12]}"
        self.image = docker_build.Image(
            f"{name}-build",
            docker_build.ImageArgs(
                context=docker_build.BuildContextArgs(location=str(cfg.app_dir)),
                dockerfile=docker_build.DockerfileArgs(location=str(cfg.dockerfile)),
                target="runtime" if cfg.is_prod else "development",
                build_args={**build_args, "SUPPORT_IMAGE": support.ref},
                secrets=secrets or None,
                cache_from=cache_from,
                cache_to=cache_to,
                tags=[self.tag] if push else [self.tag, local_tag],
                push=push,
                load=not push,  # the local engine must have the image to run it
                registries=registries(cfg),
                build_on_preview=cfg.build_on_preview,
                **builder(cfg),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[support.image]),
        )
        self.digest = self.image.digest
        # Pushed: pinned by digest. Local only: the build's unique tag, which the engine has
        # since the build loaded it (no registry digest exists locally).
        self.ref = self.image.ref if push else self.image.ref.apply(lambda _: local_tag)
        self.register_outputs({"ref": self.ref, "digest": self.digest, "tag": self.tag})
