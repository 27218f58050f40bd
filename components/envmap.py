"""Environment mapping (config `env` / `secretEnv`): the stack values a template may
reference, the variable names the product keeps for itself, and the template language (literal
text, `${name}` references, `$$` for a literal `$`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi

# Environment mapping (keys `env` and `secretEnv`: the project's own variable names -> a
# template of literal text and ${name} references). The one table of the stack values a template
# may reference: name -> secret? A secret value may only go to `secretEnv`. components/stack.py
# supplies every value (docs/config.md "Environment mapping").
STACK_VALUES: dict[str, bool] = {
    "postgresHost": False,
    "postgresPort": False,
    "postgresDb": False,
    "postgresUser": False,
    "redisUrl": False,
    "redisHost": False,
    "redisPort": False,
    "allowedHosts": False,
    "csrfTrustedOrigins": False,
    "domain": False,
    "url": False,
    "staticUrl": False,
    "mediaRoot": False,
    "mediaUrl": False,
    "postgresPassword": True,
    "databaseUrl": True,
    "secretKey": True,
}
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# Names the product sets for its own reasons: a mapping must not change them.
RESERVED_ENV = {
    "DJANGO_SETTINGS_MODULE": "set it with `pulumi config set djangoSettingsModule <module>`",
    "DJANGOSTACK_SECRET_ENV": "the product lists the secretEnv names in it",
    "PATH": "the image's virtualenv must stay first",
    "HOME": "the image's user has no home directory",
    "HOSTNAME": "Docker sets it; the Celery health check reads it",
    "VIRTUAL_ENV": "the image's virtualenv",
}
# `$$` (a literal $), `${name}` (a reference), or a `$` that is neither (an error).
_TEMPLATE_TOKEN = re.compile(r"\$\$|\$\{([^}]*)\}|\$")


@dataclass(frozen=True)
class Ref:
    """A `${name}` reference to a stack value (a key of STACK_VALUES)."""

    name: str


@dataclass(frozen=True)
class EnvTemplate:
    """One parsed `env` / `secretEnv` value: literal text and references, in order."""

    parts: tuple[str | Ref, ...]

    @property
    def refs(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parts if isinstance(p, Ref))

    @property
    def has_literal(self) -> bool:
        return any(isinstance(p, str) and p for p in self.parts)

    def text(self, values: Mapping[str, str]) -> str:
        """The value over plain `values` (known at preview: the image's build-time values)."""
        return "".join(values[p.name] if isinstance(p, Ref) else p for p in self.parts)

    def render(self, values: Mapping[str, pulumi.Input[str]]) -> pulumi.Output[str]:
        """The value with each reference replaced by the stack value `values[name]`."""
        return pulumi.Output.concat(
            "", *(values[p.name] if isinstance(p, Ref) else p for p in self.parts)
        )


def parse_template(text: str) -> EnvTemplate:
    """Split `text` into literal text and `${name}` references (`$$` is a literal `$`); raise
    ValueError on a `$` that starts neither. Names are checked against STACK_VALUES later."""
    parts: list[str | Ref] = []
    literal = ""
    position = 0
    for match in _TEMPLATE_TOKEN.finditer(text):
        literal += text[position : match.start()]
        position = match.end()
        piece = match.group(0)
        if piece == "$$":
            literal += "$"
        elif piece == "$":
            raise ValueError(
                f"a $ at offset {match.start()} starts no ${{name}}; write $$ for a literal $"
            )
        elif not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", match.group(1)):
            raise ValueError(f"{piece!r} is not a reference: ${{name}}, name a stack value")
        else:
            if literal:
                parts.append(literal)
                literal = ""
            parts.append(Ref(match.group(1)))
    literal += text[position:]
    if literal:
        parts.append(literal)
    return EnvTemplate(tuple(parts))
