#!/usr/bin/env python3
"""Known-vulnerability scan of the Python distributions installed in an image (not of the
requirements files: what the image really holds).

    .venv/bin/python scripts/audit.py IMAGE [--ignore-file security/pip-audit-ignore.txt]

1. Lists every distribution inside IMAGE with importlib.metadata (the runtime venv has no pip),
   in a throwaway container without network.
2. Audits the `name==version` pins with pip-audit (`--no-deps --disable-pip`) against PyPI's
   vulnerability data (per release, `/pypi/NAME/VERSION/json`).
3. A distribution pip-audit could not audit (its answer is "not found on PyPI", e.g. behind a
   registry proxy that serves only project pages) is looked up in PyPI's project page, whose
   vulnerabilities are those of the latest release: exact when the installed version is the
   latest; otherwise partial (a vulnerability fixed before the latest release is not listed
   there), reported as such. A distribution neither source answers for fails the scan.
4. Fails on any known vulnerability unless its id (or an alias: CVE, GHSA, PYSEC) is on the
   reviewed ignore list, one `ID  # reason, reviewed YYYY-MM-DD` per line; an entry without a
   reason, or reviewed more than REVIEW_MAX_AGE_DAYS ago, fails the scan too.

Exit status: 0 clean, 1 vulnerabilities or distributions not audited, 2 bad ignore list or
image. `scripts/test.sh` runs it on the image the Docker layer built (docs/review.md).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import date
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

import requests
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
IGNORE_FILE = ROOT / "security" / "pip-audit-ignore.txt"
# HTTPS may go through a TLS-intercepting proxy whose CA only the system bundle holds.
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
PYPI_PROJECT = "https://pypi.org/pypi/{name}/json"
REVIEW_MAX_AGE_DAYS = 180
LIST_DISTRIBUTIONS = (
    "import importlib.metadata as m, json, sys; print(json.dumps({'python': sys.version.split()[0],"
    " 'distributions': sorted([d.metadata['Name'], d.version] for d in m.distributions())}))"
)
IGNORE_LINE = re.compile(
    r"^(?P<id>\S+)\s+#\s*(?P<reason>\S.*?),?\s+reviewed\s+(?P<date>\d{4}-\d{2}-\d{2})$"
)


@dataclass(frozen=True)
class Finding:
    """One known vulnerability of one installed distribution."""

    name: str
    version: str
    id: str
    aliases: tuple[str, ...] = ()
    fixed_in: tuple[str, ...] = ()

    @property
    def ids(self) -> set[str]:
        return {self.id, *self.aliases}


@dataclass
class Audit:
    """What was scanned and what was found, per distribution (canonical name -> version)."""

    distributions: dict[str, str]
    findings: list[Finding] = field(default_factory=list)
    by_pip_audit: set[str] = field(default_factory=set)
    exact_from_project: set[str] = field(default_factory=set)
    partial_from_project: dict[str, str] = field(default_factory=dict)  # name -> latest
    not_audited: dict[str, str] = field(default_factory=dict)  # name -> why


def parse_ignore_list(text: str, today: date) -> dict[str, str]:
    """Vulnerability id -> reason. Raises ValueError naming each malformed or stale entry."""
    entries, problems = {}, []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = IGNORE_LINE.match(line)
        if not match:
            problems.append(f"line {number}: expected `ID  # reason, reviewed YYYY-MM-DD`")
            continue
        age = (today - date.fromisoformat(match["date"])).days
        if not 0 <= age <= REVIEW_MAX_AGE_DAYS:
            problems.append(
                f"line {number}: {match['id']} reviewed {match['date']}, review it again"
                f" (at most {REVIEW_MAX_AGE_DAYS} days, not in the future)"
            )
        entries[match["id"]] = match["reason"]
    if problems:
        raise ValueError("\n".join(problems))
    return entries


def image_distributions(image: str) -> tuple[str, dict[str, str]]:
    """(Python version, canonical name -> version) of every distribution inside `image`."""
    done = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "--read-only", "--cap-drop", "ALL",
         "--security-opt", "no-new-privileges", "--entrypoint", "python", image,
         "-c", LIST_DISTRIBUTIONS],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"[audit] cannot list the distributions of {image}:\n{done.stderr}")
    listed = json.loads(done.stdout)
    pins = {canonicalize_name(name): ver for name, ver in listed["distributions"]}
    return listed["python"], pins


def pip_audit(pins: dict[str, str]) -> dict[str, list[dict[str, Any]] | None]:
    """pip-audit's answer per canonical name: its vulnerabilities, or None when skipped."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as requirements:
        requirements.write("".join(f"{name}=={ver}\n" for name, ver in sorted(pins.items())))
        requirements.flush()
        done = subprocess.run(
            [sys.executable, "-m", "pip_audit", "--no-deps", "--disable-pip",
             "--requirement", requirements.name, "--format", "json",
             "--progress-spinner", "off"],
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
    if done.returncode not in (0, 1):  # 1: vulnerabilities found
        raise SystemExit(f"[audit] pip-audit failed:\n{done.stderr[-3000:]}")
    answers: dict[str, list[dict[str, Any]] | None] = {}
    for dependency in json.loads(done.stdout)["dependencies"]:
        skipped = "skip_reason" in dependency
        answers[canonicalize_name(dependency["name"])] = None if skipped else dependency["vulns"]
    return answers


def latest_release_findings(
    name: str, installed: str, project: dict[str, Any]
) -> tuple[bool, list[Finding]]:
    """(exact, findings) from PyPI's project page, which lists the latest release's
    vulnerabilities. For an older installed version a listed vulnerability counts unless a fix
    at or below the installed version exists (a backport); vulnerabilities already fixed before
    the latest release are not listed there at all, so that answer is partial."""
    exact = Version(project["info"]["version"]) == Version(installed)
    findings = []
    for vuln in project.get("vulnerabilities") or []:
        if vuln.get("withdrawn"):
            continue
        fixes = tuple(vuln.get("fixed_in") or ())
        if not exact and any(Version(fix) <= Version(installed) for fix in fixes):
            continue
        findings.append(
            Finding(name, installed, vuln["id"], tuple(vuln.get("aliases") or ()), fixes)
        )
    return exact, findings


def audit(pins: dict[str, str], session: requests.Session) -> Audit:
    result = Audit(dict(pins))
    answers = pip_audit(pins)
    for name, installed in sorted(pins.items()):
        vulns = answers.get(name)
        if vulns is not None:
            result.by_pip_audit.add(name)
            result.findings += [
                Finding(
                    name,
                    installed,
                    v["id"],
                    tuple(v.get("aliases") or ()),
                    tuple(v.get("fix_versions") or ()),
                )
                for v in vulns
            ]
            continue
        try:
            response = session.get(PYPI_PROJECT.format(name=name), timeout=30)
            response.raise_for_status()
            project = response.json()
        except (requests.RequestException, ValueError) as error:
            result.not_audited[name] = f"PyPI project page: {error}"
            continue
        exact, findings = latest_release_findings(name, installed, project)
        result.findings += findings
        if exact:
            result.exact_from_project.add(name)
        else:
            result.partial_from_project[name] = project["info"]["version"]
    return result


def report(image: str, python: str, result: Audit, ignored: dict[str, str]) -> int:
    """Print what was scanned and found; the exit status."""
    count = len(result.distributions)
    print(f"[audit] {image}: {count} Python distributions (python {python}) scanned")
    print(
        f"[audit] pip-audit {installed_version('pip-audit')} (PyPI per-release data): "
        f"{len(result.by_pip_audit)} audited; PyPI project pages: "
        f"{len(result.exact_from_project)} audited exactly (installed = latest release), "
        f"{len(result.partial_from_project)} partially; not audited: {len(result.not_audited)}"
    )
    for name, latest in sorted(result.partial_from_project.items()):
        print(
            f"[audit]   partial: {name} {result.distributions[name]} (latest {latest}): only "
            "vulnerabilities still open in the latest release were checked"
        )
    for name, why in sorted(result.not_audited.items()):
        print(f"[audit]   NOT AUDITED: {name} {result.distributions[name]}: {why}")
    failing, used = [], set()
    for finding in result.findings:
        matched = finding.ids & ignored.keys()
        used |= matched
        fixes = ", ".join(finding.fixed_in) or "none"
        aliases = ", ".join(finding.aliases) or "no alias"
        line = f"{finding.name} {finding.version}: {finding.id} ({aliases}; fixed in {fixes})"
        if matched:
            print(f"[audit]   ignored {line}: {ignored[sorted(matched)[0]]}")
        else:
            print(f"[audit]   VULNERABLE {line}")
            failing.append(finding)
    for stale in sorted(ignored.keys() - used):
        print(f"[audit]   note: ignore entry {stale} matches nothing any more: remove it")
    print(
        f"[audit] known vulnerabilities: {len(failing)} failing, "
        f"{len(result.findings) - len(failing)} ignored"
    )
    return 1 if failing or result.not_audited else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("image", help="image reference or id to scan")
    parser.add_argument("--ignore-file", type=Path, default=IGNORE_FILE)
    args = parser.parse_args(argv)
    try:
        ignored = parse_ignore_list(args.ignore_file.read_text(), date.today())
    except (OSError, ValueError) as error:
        print(f"[audit] {args.ignore_file}: {error}", file=sys.stderr)
        return 2
    if CA_BUNDLE.is_file():  # for requests here and in pip-audit
        os.environ.setdefault("REQUESTS_CA_BUNDLE", str(CA_BUNDLE))
    # Resolved once: the listing and the report name the same image even if the tag moves.
    inspect = ["docker", "image", "inspect", "--format", "{{.Id}}", args.image]
    found = subprocess.run(inspect, capture_output=True, text=True, check=False)
    if found.returncode != 0:
        print(f"[audit] no image {args.image}: {found.stderr.strip()}", file=sys.stderr)
        return 2
    image_id = found.stdout.strip()
    python, pins = image_distributions(image_id)
    if not pins:
        print(f"[audit] {args.image}: no Python distribution found", file=sys.stderr)
        return 2
    with requests.Session() as session:
        result = audit(pins, session)
    return report(f"{args.image} ({image_id[:19]})", python, result, ignored)


if __name__ == "__main__":
    sys.exit(main())
