"""What the program learns from the Django project at appDir before anything is built.

Nothing is assumed of the project's names: the settings module and the Celery app are read
from its source (docs/config.md, "Deploy your own project"); each has a config override, and
what cannot be detected is reported as a config problem naming the key to set.

- settings module: the `os.environ.setdefault("DJANGO_SETTINGS_MODULE", "...")` of `manage.py`,
  else the same line in a `<package>/wsgi.py` or `<package>/asgi.py` (one value among them);
- Celery app: the package holding a `celery.py` that creates a `Celery(...)` app
  (`celery -A <package>` finds `<package>.celery`), or the module `celery_app.py` that does
  (cookiecutter-django's `config.celery_app`); none: the project has no Celery app, and the
  stack runs no default worker.
"""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from packaging.specifiers import InvalidSpecifier, SpecifierSet

# A dotted Python module path: what DJANGO_SETTINGS_MODULE and `celery -A` accept.
MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$")
# Fallback files for the settings module, relative to appDir (Django's startproject layout).
ENTRY_POINT_GLOBS = ("*/wsgi.py", "*/asgi.py")
# Where a Celery app module is looked for: a package at the top, or one level down.
CELERY_GLOBS = ("*/celery.py", "*/*/celery.py", "*/celery_app.py", "*/*/celery_app.py")


class DetectionError(Exception):
    """What could not be found; `str()` says where the program looked."""


def _parse(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, UnicodeDecodeError, SyntaxError):
        return None


def _setdefault_value(path: Path) -> str | None:
    """The string a file passes to `os.environ.setdefault("DJANGO_SETTINGS_MODULE", ...)`."""
    tree = _parse(path)
    if tree is None:
        return None
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "setdefault"
            and len(node.args) == 2
            and all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in node.args)
            and node.args[0].value == "DJANGO_SETTINGS_MODULE"  # type: ignore[attr-defined]
        ):
            return node.args[1].value  # type: ignore[attr-defined]
    return None


def settings_module(app_dir: Path, server: bool = False) -> str:
    """The settings module the project's own entry points default to. `server` (prod): what
    the server loads, `<package>/wsgi.py` or `asgi.py`, before manage.py (whose default is often
    the developers' settings); otherwise manage.py first, what developers run."""
    manage = app_dir / "manage.py"
    from_manage = _setdefault_value(manage) if manage.is_file() else None
    if from_manage and not server:
        return from_manage
    found = {
        path.relative_to(app_dir).as_posix(): value
        for pattern in ENTRY_POINT_GLOBS
        for path in sorted(app_dir.glob(pattern))
        if (value := _setdefault_value(path))
    }
    if len(set(found.values())) == 1:
        return next(iter(found.values()))
    if found:
        listing = ", ".join(f"{file}: {value}" for file, value in found.items())
        raise DetectionError(f"the project's entry points disagree ({listing})")
    if from_manage:
        return from_manage
    raise DetectionError(
        "no os.environ.setdefault('DJANGO_SETTINGS_MODULE', ...) in manage.py, "
        f"{' or '.join(ENTRY_POINT_GLOBS)}"
    )


def settings_candidates(app_dir: Path) -> list[str]:
    """Modules that look like settings (`settings.py`, `settings/<name>.py`, at most two
    packages down), production-sounding first: a fix hint names the project's own, not ours."""
    found = {
        ".".join(path.relative_to(app_dir).with_suffix("").parts)
        for pattern in ("*/settings.py", "*/*/settings.py", "*/settings/*.py", "*/*/settings/*.py")
        for path in app_dir.glob(pattern)
        if path.name != "__init__.py"
    }
    modules = sorted(m for m in found if all(MODULE_RE.match(part) for part in m.split(".")))
    return sorted(modules, key=lambda m: not m.rsplit(".", 1)[-1].startswith("prod"))


def _creates_celery_app(path: Path) -> bool:
    tree = _parse(path)
    return tree is not None and any(
        isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Name) and node.func.id == "Celery")
            or (isinstance(node.func, ast.Attribute) and node.func.attr == "Celery")
        )
        for node in ast.walk(tree)
    )


def _celery_target(path: Path, app_dir: Path) -> str:
    """What `celery -A` loads for an app created in `path`: the package for a `celery.py`
    (Celery imports `<package>.celery` itself), the module otherwise."""
    parts = path.relative_to(app_dir).with_suffix("").parts
    return ".".join(parts[:-1] if path.name == "celery.py" else parts)


def celery_app(app_dir: Path, settings: str) -> str | None:
    """What `celery -A` loads: the project's Celery app; None when the project creates none."""
    targets = sorted(
        _celery_target(path, app_dir)
        for pattern in CELERY_GLOBS
        for path in app_dir.glob(pattern)
        if _creates_celery_app(path)
    )
    if len(targets) == 1:
        return targets[0]
    top = settings.split(".")[0]
    beside_settings = [t for t in targets if t.split(".")[0] == top]
    if len(beside_settings) == 1:  # several apps: the one next to the settings
        return beside_settings[0]
    if targets:
        raise DetectionError(f"several modules create a Celery app: {', '.join(targets)}")
    return None


def module_file(app_dir: Path, module: str) -> Path | None:
    """The file of a dotted module inside the project (a module or a package), or None."""
    base = app_dir.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _star_import_module(node: ast.ImportFrom, module: str, app_dir: Path) -> str | None:
    """The module a `from X import *` in `module` names, resolved like Python does."""
    if node.level == 0:
        return node.module
    base = module.split(".")
    if module_file(app_dir, module) != app_dir.joinpath(*base) / "__init__.py":
        base = base[:-1]  # a plain module: relative to its package
    base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
    return ".".join([*base, node.module] if node.module else base)


class _Unknown:
    """A setting computed in a way the program does not read before the build."""

    def __init__(self, line: int):
        self.line = line


# Calls that read the environment with a default (os.environ.get, os.getenv, django-environ's
# env() / env.str() / env.bool(), python-decouple's config()): the value is the default, which
# is what the stack has unless config env maps that variable (the build checks the result).
_ENV_READERS = frozenset({"get", "getenv", "env", "str", "bool", "config"})


def _evaluate(node: ast.expr, names: dict[str, object]) -> object:
    """The value of a settings expression made of literals, names assigned before it, f-strings,
    `+` and environment reads with a default; _Unknown otherwise."""
    unknown = _Unknown(node.lineno)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return names.get(node.id, unknown)
    if isinstance(node, ast.JoinedStr):
        parts = []
        for part in node.values:
            value = (
                _evaluate(part.value, names)
                if isinstance(part, ast.FormattedValue)
                else _evaluate(part, names)
            )
            if isinstance(value, _Unknown) or (
                isinstance(part, ast.FormattedValue) and (part.format_spec or part.conversion > 0)
            ):
                return unknown
            parts.append(str(value))
        return "".join(parts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _evaluate(node.left, names), _evaluate(node.right, names)
        return left + right if isinstance(left, str) and isinstance(right, str) else unknown
    if isinstance(node, ast.Call):
        func = node.func
        reader = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        default = next((k.value for k in node.keywords if k.arg == "default"), None)
        if default is None and reader != "env" and len(node.args) >= 2:  # env(name, cast, ...)
            default = node.args[1]
        if reader in _ENV_READERS and default is not None:
            return _evaluate(default, names)
    return unknown


def _namespace(app_dir: Path, module: str, seen: frozenset[str]) -> dict[str, object]:
    """A settings module's top-level names as the program can evaluate them (_evaluate),
    following its `from ... import *` lines in order; the last assignment wins."""
    path = module_file(app_dir, module)
    tree = _parse(path) if path else None
    names: dict[str, object] = {}
    if tree is None or module in seen:
        return names
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
            source = _star_import_module(node, module, app_dir)
            names.update(_namespace(app_dir, source, seen | {module}) if source else {})
        elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            value = _evaluate(node.value, names)
            names.update({t.id: value for t in targets if isinstance(t, ast.Name)})
    return names


def setting(app_dir: Path, module: str, name: str) -> object:
    """What a settings module assigns to `name` (None when never assigned); raises
    DetectionError when it is computed in a way the program cannot read."""
    value = _namespace(app_dir, module, frozenset()).get(name)
    if isinstance(value, _Unknown):
        raise DetectionError(
            f"{name} in {module} (or a module it star-imports, line {value.line}) is computed "
            "in a way the program cannot read before the build"
        )
    return value


def _setting_text(app_dir: Path, module: str, name: str) -> str | None:
    value = setting(app_dir, module, name)
    if value is not None and not isinstance(value, str):
        raise DetectionError(f"{name} in {module} is not text: {value!r}")
    return value


def _url_path(value: str) -> str:
    """A settings URL as nginx's location: its path, with leading and trailing slashes."""
    path = urlsplit(value).path if urlsplit(value).netloc else value
    return "/" + path.strip("/") + "/" if path.strip("/") else "/"


def static_url(app_dir: Path, settings: str) -> str:
    """The settings' STATIC_URL as a path with leading and trailing slashes (nginx's location)."""
    value = _setting_text(app_dir, settings, "STATIC_URL")
    if value is None:
        raise DetectionError(f"no STATIC_URL = '...' in {settings} or the settings it star-imports")
    return _url_path(value)


def media_url(app_dir: Path, settings: str) -> str:
    """The settings' MEDIA_URL like static_url; "" when the settings never set it (Django's
    default: a project without uploads, which gets no media location)."""
    value = _setting_text(app_dir, settings, "MEDIA_URL")
    return "" if value is None or not value.strip() else _url_path(value)


# The build command a setting asks for (config buildCommands overrides): with COMPRESS_OFFLINE,
# django-compressor serves only what `compress` generated at build time (else every page using
# {% compress %} answers 500 OfflineGenerationError).
COMPRESS_COMMAND = ("python", "manage.py", "compress")


def build_commands(app_dir: Path, settings: str) -> tuple[tuple[str, ...], ...]:
    """The build commands the project's settings call for: `compress` when COMPRESS_OFFLINE is
    True (read like STATIC_URL; computed in a way the program cannot read: none)."""
    try:
        offline = setting(app_dir, settings, "COMPRESS_OFFLINE")
    except DetectionError:
        return ()
    return (COMPRESS_COMMAND,) if offline is True else ()


# Python minors a `python:<minor>-slim` base image exists for, oldest first, and the one used
# when the project does not say (or allows it).
PYTHON_MINORS = ("3.10", "3.11", "3.12", "3.13", "3.14")
DEFAULT_PYTHON = "3.13"


def _minor(text: str) -> str | None:
    match = re.match(r"^\s*(?:python-?)?(3\.\d+)(?:\.\d+)?\s*$", text)
    return match.group(1) if match else None


def _poetry_specifier(text: str) -> str:
    """Poetry's `^3.12` / `~3.12` as PEP 440; anything else is PEP 440 already."""
    text = text.strip()
    if text.startswith("^"):
        major = text[1:].split(".")[0]
        return f">={text[1:]},<{int(major) + 1}"
    if text.startswith("~") and not text.startswith("~="):
        major, minor = [*text[1:].split("."), "0"][:2]
        return f">={text[1:]},<{major}.{int(minor) + 1}"
    return text


def python_version(app_dir: Path) -> tuple[str, str] | None:
    """The Python minor the project asks for and the file that says so: `.python-version`,
    `runtime.txt` (`python-3.12.4`), else pyproject's `requires-python` (or Poetry's
    `python` dependency), where the default minor wins when allowed, else the newest allowed.
    None when the project does not say."""
    for name in (".python-version", "runtime.txt"):
        path = app_dir / name
        if path.is_file():
            lines = [line for line in path.read_text().splitlines() if line.strip()]
            minor = _minor(lines[0]) if lines else None
            if minor is None:
                raise DetectionError(f"{name} does not name a Python 3 version: {lines[:1]}")
            return minor, name
    pyproject = app_dir / "pyproject.toml"
    if not pyproject.is_file():
        return None
    try:
        data = tomllib.loads(pyproject.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise DetectionError(f"pyproject.toml cannot be read: {error}") from error
    spec = data.get("project", {}).get("requires-python") or (
        data.get("tool", {}).get("poetry", {}).get("dependencies", {}).get("python")
    )
    if not isinstance(spec, str):
        return None
    try:
        allowed = SpecifierSet(_poetry_specifier(spec))
    except InvalidSpecifier as error:
        raise DetectionError(f"pyproject.toml: {spec!r} is not a version specifier") from error
    matching = [minor for minor in PYTHON_MINORS if allowed.contains(f"{minor}.0")]
    if not matching:
        raise DetectionError(
            f"pyproject.toml requires Python {spec}, none of {', '.join(PYTHON_MINORS)}"
        )
    return (DEFAULT_PYTHON if DEFAULT_PYTHON in matching else matching[-1]), "pyproject.toml"


# A migration module of a project app: <app package>/migrations/<NNNN_name>.py.
MIGRATION_RE = re.compile(r"^\d{4}_[A-Za-z0-9_]+\.py$")


def migrations(app_dir: Path, ignored: Callable[[str], bool]) -> dict[str, tuple[str, ...]]:
    """The project's own migrations by app package (dotted path) -> migration names, sorted,
    for the files the build context keeps (`ignored` tells which it drops). Third-party apps'
    migrations come with their packages and are not in the source."""
    found: dict[str, list[str]] = {}
    for path in sorted(app_dir.rglob("migrations/*.py")):
        rel = path.relative_to(app_dir).as_posix()
        if not MIGRATION_RE.match(path.name) or ignored(rel):
            continue
        package = ".".join(path.relative_to(app_dir).parent.parent.parts)
        if not package or not all(MODULE_RE.match(part) for part in package.split(".")):
            continue
        found.setdefault(package, []).append(path.stem)
    return {package: tuple(names) for package, names in found.items()}
