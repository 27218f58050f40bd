"""scripts/audit.py's decisions, on made-up scanner answers (no Docker, no network): the
reviewed ignore list's format and age, which PyPI project data counts, and when the scan fails.
The real pipeline (an image holding a known-vulnerable distribution) is in
tests/docker/test_image_audit.py."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from scripts import audit

TODAY = date(2026, 11, 24)
PYCRYPTO_VULN = {
    "id": "PYSEC-2017-94",
    "aliases": ["CVE-2013-7459", "GHSA-cq27-v7xp-c356"],
    "fixed_in": [],
    "withdrawn": None,
}


def project(latest: str, *vulns: dict[str, Any]) -> dict[str, Any]:
    return {"info": {"version": latest}, "vulnerabilities": list(vulns)}


def test_ignore_list_reads_id_and_reason() -> None:
    text = (
        "# comment\n\n"
        "CVE-2026-1234  # no fixed release on PyPI; code path unused, reviewed 2026-11-01\n"
    )
    assert audit.parse_ignore_list(text, TODAY) == {
        "CVE-2026-1234": "no fixed release on PyPI; code path unused"
    }


@pytest.mark.parametrize(
    "line",
    [
        "CVE-2026-1234",  # no reason
        "CVE-2026-1234  # unused code",  # no review date
        "CVE-2026-1234  # reviewed 2026-11-01",  # no reason
        f"CVE-2026-1234  # unused code, reviewed {TODAY - timedelta(days=181)}",  # stale
        f"CVE-2026-1234  # unused code, reviewed {TODAY + timedelta(days=1)}",  # future
    ],
)
def test_ignore_list_rejects_entries_without_reason_or_current_review(line: str) -> None:
    with pytest.raises(ValueError, match="line 1"):
        audit.parse_ignore_list(line + "\n", TODAY)


def test_shipped_ignore_list_is_valid() -> None:
    audit.parse_ignore_list(audit.IGNORE_FILE.read_text(), date.today())


def test_latest_release_data_is_exact_for_the_latest_version() -> None:
    exact, findings = audit.latest_release_findings(
        "pycrypto", "2.6.1", project("2.6.1", PYCRYPTO_VULN)
    )
    assert exact
    assert [f.id for f in findings] == ["PYSEC-2017-94"]
    assert findings[0].ids == {"PYSEC-2017-94", "CVE-2013-7459", "GHSA-cq27-v7xp-c356"}


def test_older_version_counts_open_vulnerabilities_unless_a_backport_covers_it() -> None:
    open_in_latest = {**PYCRYPTO_VULN, "id": "OPEN", "fixed_in": ["6.2.0"]}
    backported = {**PYCRYPTO_VULN, "id": "BACKPORTED", "fixed_in": ["5.2.18", "6.2.0"]}
    withdrawn = {**PYCRYPTO_VULN, "id": "WITHDRAWN", "withdrawn": "2026-01-01T00:00:00Z"}
    exact, findings = audit.latest_release_findings(
        "django", "5.2.19", project("6.1.3", open_in_latest, backported, withdrawn)
    )
    assert not exact
    assert [f.id for f in findings] == ["OPEN"]


class FakeResponse:
    def __init__(self, payload: dict[str, Any] | None) -> None:
        self.payload = payload

    def raise_for_status(self) -> None:
        if self.payload is None:
            raise audit.requests.HTTPError("404 Not Found")

    def json(self) -> dict[str, Any]:
        assert self.payload is not None
        return self.payload


class FakeSession:
    def __init__(self, pages: dict[str, dict[str, Any]]) -> None:
        self.pages = pages

    def get(self, url: str, timeout: float) -> FakeResponse:
        return FakeResponse(next((p for n, p in self.pages.items() if f"/{n}/" in url), None))


def run_audit(
    monkeypatch: pytest.MonkeyPatch,
    pins: dict[str, str],
    pip_audit_answers: dict[str, Any],
    pages: dict[str, dict[str, Any]],
) -> audit.Audit:
    monkeypatch.setattr(audit, "pip_audit", lambda _pins: pip_audit_answers)
    return audit.audit(pins, FakeSession(pages))  # type: ignore[arg-type]


def test_skipped_by_pip_audit_falls_back_to_project_pages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = run_audit(
        monkeypatch,
        {"django": "5.2.19", "pycrypto": "2.6.1", "six": "1.17.0", "private": "1.0"},
        {"django": None, "pycrypto": None, "six": []},  # six audited by pip-audit, clean
        {"django": project("6.1.3"), "pycrypto": project("2.6.1", PYCRYPTO_VULN)},
    )
    assert result.by_pip_audit == {"six"}
    assert result.exact_from_project == {"pycrypto"}
    assert result.partial_from_project == {"django": "6.1.3"}
    assert set(result.not_audited) == {"private"}
    assert [f.id for f in result.findings] == ["PYSEC-2017-94"]


def test_pip_audit_findings_are_kept_with_their_aliases(monkeypatch: pytest.MonkeyPatch) -> None:
    vuln = {"id": "GHSA-xxxx", "aliases": ["CVE-2026-1"], "fix_versions": ["2.0"]}
    result = run_audit(monkeypatch, {"lib": "1.0"}, {"lib": [vuln]}, {})
    assert result.findings == [audit.Finding("lib", "1.0", "GHSA-xxxx", ("CVE-2026-1",), ("2.0",))]


@pytest.mark.parametrize(
    ("ignored", "not_audited", "status"),
    [
        ({}, {}, 1),  # a known vulnerability fails
        ({"CVE-2013-7459": "reason"}, {}, 0),  # ignored through an alias
        ({"PYSEC-2017-94": "reason"}, {"private": "404"}, 1),  # unaudited distribution fails
    ],
)
def test_exit_status(
    ignored: dict[str, str],
    not_audited: dict[str, str],
    status: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = audit.Audit(
        {"pycrypto": "2.6.1", "private": "1.0"},
        findings=[audit.Finding("pycrypto", "2.6.1", "PYSEC-2017-94", ("CVE-2013-7459",))],
        exact_from_project={"pycrypto"},
        not_audited=not_audited,
    )
    assert audit.report("img", "3.11", result, ignored) == status
    out = capsys.readouterr().out
    assert "img: 2 Python distributions" in out
    assert ("VULNERABLE pycrypto 2.6.1: PYSEC-2017-94" in out) == (not ignored)
