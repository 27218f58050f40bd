"""How the project at appDir declares its Python dependencies, found before anything is built.

The image installs dependencies from exactly the files found here, copied before any source
(docker/Dockerfile, stage `deps`), so a code change never reinstalls packages. Layouts, in the
order they are tried (docs/image.md, "Dependency layouts"):

1. `requirementsFile` set in the config: that pip requirements file (relative to appDir);
2. `pyproject.toml` + `uv.lock`: the lock, exported by uv and installed by pip;
3. `pyproject.toml` + `poetry.lock`: the lock, exported by Poetry and installed by pip;
4. `requirements.txt`;
5. a `requirements/` directory: the first of REQUIREMENTS_DIR_CANDIDATES.

For a requirements file, every `-r`/`-c` include is followed (relative to the including file,
as pip reads them), and a missing include is reported with the file and line naming it.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from components.buildcontext import ignore_patterns, ignored

# Tried in this order when the project has only a requirements/ directory: what production
# installs first, then the shared base most layouts split it from.
REQUIREMENTS_DIR_CANDIDATES = (
    "production.txt",
    "prod.txt",
    "requirements.txt",
    "base.txt",
    "common.txt",
)
# -r FILE, -rFILE, --requirement FILE, --requirement=FILE; the same for -c/--constraint.
_INCLUDE_RE = re.compile(r"^(?:-r|-c|--requirement|--constraint)(?:\s*=\s*|\s+)?(?P<file>\S+)")
# Names go through the Dockerfile's shell as one space-separated build arg.
_SAFE_NAME_RE = re.compile(r"^[A-Za-z0-9._/+@-]+$")


@dataclass(frozen=True)
class Dependencies:
    """What the build copies and how it installs it (build args DEP_KIND, DEP_ENTRY, DEP_FILES).

    kind: "requirements" (pip install -r entry), "uv" or "poetry" (the tool exports the lock,
    then pip installs the export).
    entry: the file the install starts from, relative to appDir.
    files: every file the install reads, relative to appDir (posix, sorted, entry included)."""

    kind: str
    entry: str
    files: tuple[str, ...]

    def build_args(self) -> dict[str, str]:
        return {"DEP_KIND": self.kind, "DEP_ENTRY": self.entry, "DEP_FILES": " ".join(self.files)}


class DependencyError(Exception):
    """The dependency declaration cannot be used; `str()` says which file and line, and why."""


def _rel(path: Path, app_dir: Path) -> str:
    return path.relative_to(app_dir).as_posix()


def _includes(file: Path) -> list[tuple[int, str]]:
    """(line number, included path as written) for each -r/-c line of a requirements file."""
    found = []
    for number, raw in enumerate(file.read_text().splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        match = _INCLUDE_RE.match(line)
        if match:
            found.append((number, match.group("file")))
    return found


def requirements_closure(entry: Path, app_dir: Path) -> tuple[str, ...]:
    """The requirements file `entry` and every file it includes with -r/-c, recursively: paths
    relative to appDir. Raises DependencyError naming the including file and line of an include
    that is missing, a URL, or outside appDir (the build only sees appDir)."""
    app_dir = app_dir.resolve()
    seen: set[Path] = set()
    pending = [entry.resolve()]
    while pending:
        file = pending.pop()
        if file in seen:
            continue
        seen.add(file)
        for number, written in _includes(file):
            where = f"{_rel(file, app_dir)} line {number}"
            if "://" in written:
                raise DependencyError(
                    f"{where} includes {written}: a URL, which the build cannot follow offline"
                )
            target = (file.parent / written).resolve()
            if not target.is_relative_to(app_dir):
                raise DependencyError(
                    f"{where} includes {written}, which is outside appDir {app_dir} "
                    "(the image build only sees appDir)"
                )
            if not target.is_file():
                raise DependencyError(
                    f"{where} includes {written}, but {_rel(target, app_dir)} does not exist"
                )
            pending.append(target)
    return tuple(sorted(_rel(file, app_dir) for file in seen))


def _checked(deps: Dependencies, app_dir: Path) -> Dependencies:
    unsafe = [name for name in deps.files if not _SAFE_NAME_RE.match(name)]
    if unsafe:
        raise DependencyError(
            f"dependency file names must be [A-Za-z0-9._/+@-] only (no spaces): {unsafe}"
        )
    # The build reads them from the context Docker sends, which .dockerignore filters.
    patterns = ignore_patterns(app_dir)
    hidden = [name for name in deps.files if ignored(name, patterns)]
    if hidden:
        raise DependencyError(
            f"{', '.join(hidden)} excluded by {app_dir / '.dockerignore'}, so the build cannot "
            "read it: remove the pattern that matches it"
        )
    return deps


def detect(app_dir: Path, requirements_file: str = "") -> Dependencies:
    """The dependency layout of the project at `app_dir` (see the module docstring for the
    order). `requirements_file`, when given, is a pip requirements file relative to app_dir and
    wins over detection. Raises DependencyError when nothing usable is found."""
    app_dir = app_dir.resolve()
    if requirements_file:
        entry = (app_dir / requirements_file).resolve()
        if not entry.is_relative_to(app_dir):
            raise DependencyError(f"{requirements_file} is outside appDir {app_dir}")
        if not entry.is_file():
            raise DependencyError(f"{requirements_file} does not exist in appDir {app_dir}")
        closure = requirements_closure(entry, app_dir)
        return _checked(Dependencies("requirements", _rel(entry, app_dir), closure), app_dir)
    pyproject = app_dir / "pyproject.toml"
    if pyproject.is_file() and (app_dir / "uv.lock").is_file():
        return _checked(
            Dependencies("uv", "pyproject.toml", ("pyproject.toml", "uv.lock")), app_dir
        )
    if pyproject.is_file() and (app_dir / "poetry.lock").is_file():
        files = ("poetry.lock", "pyproject.toml")
        return _checked(Dependencies("poetry", "pyproject.toml", files), app_dir)
    candidates = ["requirements.txt"]
    candidates += [f"requirements/{name}" for name in REQUIREMENTS_DIR_CANDIDATES]
    for candidate in candidates:
        entry = app_dir / candidate
        if entry.is_file():
            closure = requirements_closure(entry, app_dir)
            return _checked(Dependencies("requirements", candidate, closure), app_dir)
    tried = ", ".join(["pyproject.toml + uv.lock", "pyproject.toml + poetry.lock", *candidates])
    raise DependencyError(f"no dependency declaration found in appDir {app_dir} (tried {tried})")


# What the stack runs that a project's own dependencies may lack, pinned: the program adds each
# to the image's install (a layer of its own after the project's) when it finds none of `names`
# declared (docs/image.md, "What the image adds").
@dataclass(frozen=True)
class Provided:
    requirement: str  # the requirement line installed (pinned, or bounded by the project's own)
    names: tuple[str, ...]  # any of these declared (normalized) means the project has it
    why: str


GUNICORN = Provided("gunicorn==27.0.1", ("gunicorn",), "the web server the image runs")
# Celery's own Redis extra, at the project's kombu version: the client (redis) and what kombu's
# Redis transport imports with it (packaging), in the versions that kombu release accepts.
REDIS_CLIENT = Provided(
    "kombu[redis]",
    ("redis", "celery[redis]", "kombu[redis]"),
    "the client of the stack's Celery broker (Redis)",
)
POSTGRES_DRIVER = Provided(
    "psycopg[binary]==3.3.9",
    ("psycopg", "psycopg-binary", "psycopg2", "psycopg2-binary", "psycopg-c"),
    "the driver of the stack's database (PostgreSQL)",
)
# A requirement's project name and extras (PEP 508), at the start of a requirements line.
_REQUIREMENT_RE = re.compile(r"^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:\[([^\]]*)\])?")
# An extraPackages entry: one pinned requirement, no spaces, markers or URLs (it reaches pip
# through the Dockerfile's shell as one word of a space-separated build arg).
PINNED_RE = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?(?:\[[A-Za-z0-9._,-]+\])?==[A-Za-z0-9.+!_-]+$"
)


def normalize(name: str) -> str:
    """A distribution name as PyPI compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_names(line: str) -> set[str]:
    """The distribution names a requirement line declares: its own, and `<name>[<extra>]` per
    extra (celery[redis] brings the Redis client); none for options, comments and blank lines."""
    line = line.split(" #", 1)[0].strip()
    match = _REQUIREMENT_RE.match(line)
    if line.startswith(("-", "#")) or match is None:
        return set()
    name = normalize(match.group(1))
    extras = [normalize(e) for e in (match.group(2) or "").split(",") if e.strip()]
    return {name, *(f"{name}[{extra}]" for extra in extras)}


def declared(app_dir: Path, found: Dependencies) -> set[str]:
    """Every distribution the project's dependency files name (normalized; see
    requirement_names): requirements lines, or the packages of a uv or Poetry lock."""
    names: set[str] = set()
    for rel in found.files:
        path = app_dir / rel
        if found.kind != "requirements" and path.name.endswith(".lock"):
            packages = tomllib.loads(path.read_text()).get("package", [])
            names |= {normalize(p["name"]) for p in packages if isinstance(p.get("name"), str)}
        elif found.kind == "requirements":
            for line in path.read_text().splitlines():
                names |= requirement_names(line)
    return names


def provided(names: set[str], has_celery: bool, extra: tuple[str, ...]) -> tuple[Provided, ...]:
    """What the image adds to the project's dependencies: Gunicorn, a Postgres driver, and the
    Redis client when the project runs Celery, each only when neither the project (`names`,
    from declared()) nor config extraPackages (`extra`) names it."""
    have = names | set().union(*(requirement_names(line) for line in extra))
    wanted = [GUNICORN, POSTGRES_DRIVER, *([REDIS_CLIENT] if has_celery else [])]
    return tuple(item for item in wanted if not have & set(item.names))
