"""Run directories: built under ``<out>.incomplete`` and renamed to ``<out>`` only when finished.

A reader never finds a half-written ``<out>``. An interrupted run stays in ``<out>.incomplete``
with its checkpoints and finished results; ``--resume`` continues it.
"""

from __future__ import annotations

import fcntl
import json
from pathlib import Path
from typing import IO, Any

from crossl.config import RunConfig
from crossl.errors import CrosslError
from crossl.io import write_text_atomic

CONFIG_FILE = "config.yaml"
PARTIAL_RESULTS = "results.partial.jsonl"


class RunDirectory:
    def __init__(self, final: Path) -> None:
        self.final = final
        self.work = final.with_name(final.name + ".incomplete")
        self._lock: IO[str] | None = None

    def _acquire(self) -> None:
        """Hold an exclusive lock on the run for this process's lifetime: two processes writing
        one run would interleave checkpoints and results."""
        self._lock = open(self.work / ".lock", "w")  # noqa: SIM115 - held until the process ends
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise CrosslError(f"{self.work} is in use by another crossl process; wait for it or stop it") from exc

    @classmethod
    def open(cls, out: str | Path, config: RunConfig, resume: bool) -> RunDirectory:
        """Create ``<out>.incomplete`` (or reopen it with ``resume``) and save the resolved config."""
        run = cls(Path(out))
        if run.final.exists():
            raise CrosslError(f"output directory {run.final} already exists; choose another --out or delete it")
        if run.work.exists():
            if not resume:
                raise CrosslError(f"an interrupted run is in {run.work}; pass --resume to continue it, or delete it")
            saved = RunConfig.load(run.work / CONFIG_FILE) if (run.work / CONFIG_FILE).is_file() else None
            if saved is not None and _what_is_computed(saved) != _what_is_computed(config):
                raise CrosslError(f"{run.work} was started with another config; resume with the same options, "
                                  "or start a new run with another --out")
        run.work.mkdir(parents=True, exist_ok=True)
        run._acquire()
        config.save(run.work / CONFIG_FILE)
        return run

    def path(self, *parts: str) -> Path:
        p = self.work.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def finished_records(self) -> list[dict[str, Any]]:
        """Result records saved by an earlier, interrupted attempt (one JSON object per line)."""
        path = self.work / PARTIAL_RESULTS
        if not path.is_file():
            return []
        records = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a line cut by the interruption: redo that record
        return records

    def save_partial_records(self, records: list[dict[str, Any]]) -> None:
        """Keep the records finished so far: an interrupted run resumes after the last of them."""
        write_text_atomic(self.work / PARTIAL_RESULTS, "".join(json.dumps(r) + "\n" for r in records))

    def finish(self) -> Path:
        (self.work / PARTIAL_RESULTS).unlink(missing_ok=True)
        (self.work / ".lock").unlink(missing_ok=True)
        self.work.rename(self.final)
        return self.final


def _what_is_computed(config: RunConfig) -> dict[str, Any]:
    """The config without the settings that only say where, how fast and how visibly a run works:
    a run interrupted on 4 GPUs may resume on 2 (the batch size is the global batch either way),
    with or without ``compile``."""
    plain = RunConfig.from_dict(config.to_dict()).to_dict()
    for key in ("devices", "num_nodes", "strategy", "compile", "progress", "logger"):
        plain["trainer"].pop(key)
    return plain
