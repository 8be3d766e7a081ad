"""What a local run records: per-step records, the run's report, and how a run ends early."""

from __future__ import annotations

import contextlib
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reanimate.engines.report import Reporter
from reanimate.errors import ReanimateError


@dataclass
class StepRecord:
    name: str
    status: str = "pending"  # executed | cached | pinned | failed | skipped | not-selected
    key: str | None = None
    command: list[str] = field(default_factory=list)
    inputs: dict[str, list[dict]] = field(default_factory=dict)
    outputs: dict[str, dict] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    start: str | None = None
    end: str | None = None
    exit_code: int | None = None
    message: str | None = None
    logs: dict[str, str] = field(default_factory=dict)
    image: dict | None = None  # {"name": TAG, "id": "sha256:..."} when run in a container
    facts: dict | None = None  # what the step said of this run (e.g. its MLflow run id)

    def as_dict(self) -> dict:
        record = dict(self.__dict__)
        for optional in ("image", "facts"):  # absent rather than null, as before they existed
            if record[optional] is None:
                del record[optional]
        return record


@dataclass
class RunReport:
    run_dir: Path
    records: dict[str, StepRecord]

    def with_status(self, status: str) -> list[str]:
        return [n for n, r in self.records.items() if r.status == status]

    @property
    def executed(self) -> list[str]:
        return self.with_status("executed")

    @property
    def failed(self) -> list[str]:
        return self.with_status("failed")

    def summary(self) -> dict:
        statuses = ("executed", "cached", "pinned", "failed", "skipped")
        return {"run": str(self.run_dir), **{s: self.with_status(s) for s in statuses}}


class StepError(Exception):
    def __init__(self, step: str, detail: str, tail: list[str]) -> None:
        super().__init__(detail)
        self.step, self.detail, self.tail = step, detail, tail


class Interrupted(ReanimateError):
    """SIGINT or SIGTERM during a run: the running steps were ended, provenance written."""

    def __init__(self, message: str, signum: int = signal.SIGINT) -> None:
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + int(signum)


@contextlib.contextmanager
def interrupts_raised():
    """Within a run, SIGTERM raises Interrupted in the main thread (as SIGINT raises
    KeyboardInterrupt), so that the run ends its steps and writes provenance."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(signum, _frame):
        raise Interrupted("terminated (SIGTERM)", signum)

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def mark_cached(record: StepRecord, meta: dict) -> None:
    original = meta.get("record") if isinstance(meta.get("record"), dict) else {}
    record.status = "cached"
    record.command = original.get("command", [])
    record.start, record.end = original.get("start"), original.get("end")
    record.exit_code = original.get("exit_code")
    record.facts = original.get("facts")


def report_summary(reporter: Reporter, report: RunReport) -> None:
    counts = {s: len(report.with_status(s)) for s in ("executed", "cached", "failed", "skipped")}
    text = ", ".join(f"{v} {k}" for k, v in counts.items() if v or k == "executed")
    if counts["executed"] == 0 and not counts["failed"]:
        text += " (nothing to do: every step is up to date)"
    reporter.summary(f"{text}; provenance: {report.run_dir}/provenance.json",
                     failed=bool(counts["failed"]))
