"""What a client sees of a report: its status, counters, progress and rate (GET /v1/reports/{id})."""

from __future__ import annotations

from typing import Any

from register.storage.models import Report
from register.storage.types import utcnow


def report_summary(report: Report) -> dict[str, Any]:
    elapsed = None
    if report.started_at:
        end = report.finished_at or utcnow()
        elapsed = (end - report.started_at).total_seconds()
    rate = report.lines_read / elapsed if elapsed else None
    return {
        "id": report.id, "status": report.status, "mode": report.mode, "format": report.format,
        "received_at": report.received_at, "started_at": report.started_at, "finished_at": report.finished_at,
        "bytes": report.body_bytes, "lines_read": report.lines_read, "accepted": report.accepted,
        "unchanged": report.unchanged, "rejected": report.rejected, "unreported": report.unreported,
        "progress": _progress(report), "lines_per_second": round(rate, 1) if rate else None,
        "elapsed_seconds": round(elapsed, 3) if elapsed is not None else None, "error": report.error,
    }  # fmt: skip


def _progress(report: Report) -> float:
    """Share of the body processed (by bytes: lines are not counted before they are read)."""
    if report.status == "done":
        return 1.0
    return round(report.bytes_read / report.body_bytes, 4) if report.body_bytes else 0.0
