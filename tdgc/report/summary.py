"""A run's summary, typed: what `tdgc.job.run_job` returns as JSON, read and written in one place, and the
short forms the Lambda's logs, its error and the Airflow DAG's tasks give of it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tdgc.report.model import Summary, TargetSection, TargetStatus

_COUNTS = ("families", "revisions", "keep", "deregister", "delete", "protected", "deregistered", "deleted")


def summary_from(data: Mapping[str, Any]) -> Summary:
    """A report's summary (Summary.to_dict's shape) read back."""
    fields = {k: int(data.get(k, 0) or 0) for k in _COUNTS}
    return Summary(**fields, results=Counter({k: int(v or 0) for k, v in (data.get("results") or {}).items()}))


def section_from(data: Mapping[str, Any]) -> TargetSection:
    """A report's target section (TargetSection.to_dict's shape) read back."""
    return TargetSection(
        str(data.get("target")),
        data.get("account"),
        str(data.get("region")),
        TargetStatus(data.get("status", TargetStatus.OK.value)),
        data.get("error"),
        summary_from(data.get("summary") or {}),
    )


@dataclass(frozen=True)
class RunSummary:
    """The summary of one run (tdgc.job's docstring has its JSON shape: stable, fields only ever added).

    `error` is set only where a run was refused before it began (the Airflow DAG's task records so); it is
    not part of run_job's shape and appears in `to_dict` only when set.
    """

    tool: str
    tool_version: str
    mode: str
    generated_at: str | None
    exit_code: int
    report: str | None
    summary: Summary = field(default_factory=Summary)
    targets: tuple[TargetSection, ...] = ()
    notes: tuple[str, ...] = ()
    incomplete: tuple[str, ...] = ()
    # The report's `families` entries nearest the quota (FamilyQuota.to_dict's shape), the closest first.
    closest_to_quota: tuple[Mapping[str, Any], ...] = ()
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "tool": self.tool,
            "tool_version": self.tool_version,
            "mode": self.mode,
            "generated_at": self.generated_at,
            "exit_code": self.exit_code,
            "report": self.report,
            "summary": self.summary.to_dict(),
            "targets": [t.to_dict() for t in self.targets],
            "notes": list(self.notes),
            "incomplete": list(self.incomplete),
            "closest_to_quota": [dict(q) for q in self.closest_to_quota],
        }
        if self.error is not None:
            out["error"] = self.error
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunSummary:
        """A summary read back (from a Lambda's answer, an XCom); missing fields take their empty value."""
        return cls(
            tool=str(data.get("tool", "")),
            tool_version=str(data.get("tool_version", "")),
            mode=str(data.get("mode", "plan")),
            generated_at=data.get("generated_at"),
            exit_code=int(data.get("exit_code") or 0),
            report=data.get("report"),
            summary=summary_from(data.get("summary") or {}),
            targets=tuple(section_from(t) for t in data.get("targets") or ()),
            notes=tuple(data.get("notes") or ()),
            incomplete=tuple(data.get("incomplete") or ()),
            closest_to_quota=tuple(data.get("closest_to_quota") or ()),
            error=data.get("error"),
        )

    def failed_targets(self) -> list[TargetSection]:
        """The targets that did not do their part: an AWS error stopped them, or apply refused to act there."""
        return [t for t in self.targets if t.status in (TargetStatus.FAILED, TargetStatus.REFUSED)]

    def flat(self) -> dict[str, Any]:
        """Flat fields (`deregister`, `done`, `targets_failed`, ...), easy to query in CloudWatch Logs Insights."""
        counts = self.summary.to_dict()
        results = counts.pop("results")
        statuses = [t.status for t in self.targets]
        return {
            "mode": self.mode,
            "exit_code": self.exit_code,
            **counts,
            **results,
            "targets": len(statuses),
            **{f"targets_{s.value}": statuses.count(s) for s in TargetStatus if s is not TargetStatus.OK},
            "report": self.report,
            "notes": list(self.notes),
            "incomplete": list(self.incomplete),
        }

    def one_line(self) -> str:
        """The run in a line: its exit status, failed actions of those planned, and each target not ok."""
        stopped = [
            f"{t.target}: {t.status.value}" + (f" ({t.error})" if t.error else "")
            for t in self.targets
            if t.status is not TargetStatus.OK
        ]
        planned = self.summary.deregister + self.summary.delete
        failed = self.summary.results.get("failed", 0)
        return f"tdgc {self.mode} exited {self.exit_code}: {failed} actions failed of {planned}" + (
            f"; {'; '.join(stopped)}" if stopped else ""
        )
