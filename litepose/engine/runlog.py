"""A run's folder as a record: the log lines (rank 0, stderr), ``config.yaml``, ``metrics.jsonl`` (one
line per epoch, trimmed to the epochs kept on resume), TensorBoard events under ``tb/`` when
tensorboard is installed, and ``curves.png`` at the end."""

from __future__ import annotations

import contextlib
import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from ..data.jsonio import parse_json
from ..files import FolderBusy, FolderLock, remove_stale_temps
from . import distributed as D

__all__ = ["RunLog", "CHECKPOINT_NAMES", "own_folder"]

#: The checkpoints a run writes (atomically) into its folder.
CHECKPOINT_NAMES = ("last.pth", "best.pth")


class RunLog:
    """The log and metrics of the run in ``out``; only rank 0 (``main``) prints and writes."""

    def __init__(self, out: Path, main: bool) -> None:
        self.out = out
        self.main = main
        self.history: list[dict[str, Any]] = []
        self.tb: Any = None

    def __call__(self, msg: str) -> None:
        if self.main:
            print(msg, file=sys.stderr, flush=True)

    def open(self, config: dict[str, Any], start_epoch: int) -> None:
        """Rank 0: the output folder (temporary files of killed checkpoint writes removed), its
        config.yaml, the metrics history kept up to ``start_epoch`` and tensorboard."""
        self.tb = None
        if not self.main:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        stale = remove_stale_temps(self.out, CHECKPOINT_NAMES)
        if stale:
            self(f"removed {len(stale)} temporary file(s) left by interrupted checkpoint writes in {self.out}")
        (self.out / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        self._trim_metrics(start_epoch)
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(self.out / "tb"))
        except Exception:  # tensorboard is optional
            self.tb = None

    def _trim_metrics(self, start_epoch: int) -> None:
        """On resume, drop metric lines of epochs that will be re-run; load the rest as history."""
        path = self.out / "metrics.jsonl"
        if not path.is_file():
            return
        rows = []
        for line in path.read_text().splitlines():
            try:
                row = parse_json(line, str(path))
            except ValueError:  # a line cut short by a crash
                continue
            if not isinstance(row, dict):
                continue
            if int(row.get("epoch", math.inf)) <= start_epoch:
                rows.append(row)
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        self.history[:] = rows  # the same list (the Trainer shares it)

    def write(self, row: dict[str, Any]) -> None:
        """One epoch's metrics: the history (every rank), metrics.jsonl and tensorboard (rank 0)."""
        self.history.append(row)
        if not self.main:
            return
        with open(self.out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        if self.tb is not None:
            for k, v in row.items():
                if isinstance(v, (int, float)) and k not in ("epoch",):
                    self.tb.add_scalar(k, v, row["epoch"])

    def close(self, curves: bool = True) -> None:
        """Rank 0: the curves drawn from metrics.jsonl (``curves``) and tensorboard closed."""
        if not self.main:
            return
        if curves:
            from ..viz.curves import plot_training_curves

            plot_training_curves(self.out / "metrics.jsonl", self.out / "curves.png")
        if self.tb is not None:
            self.tb.close()

    def stopped(self, signal_name: str, where: str) -> None:
        """Rank 0's line after a signal stopped the run at ``where``: what was kept, and that it resumes."""
        kept = [f"{self.out / 'last.pth'} (resumable: the same command goes on exactly from there)"]
        if self.history:
            kept.append(f"{self.out / 'metrics.jsonl'} ({len(self.history)} epochs)")
        if (self.out / "best.pth").is_file():
            kept.append(str(self.out / "best.pth"))
        self(f"{signal_name}: stopped in {where}; kept {', '.join(kept)}")


@contextlib.contextmanager
def own_folder(out: Path, dist: Any) -> Iterator[None]:
    """Own the output folder for the whole run (:class:`~litepose.files.FolderLock`, rank 0 only),
    so that a second run into it is refused, naming this one, instead of mixing its files with
    ours. A folder that cannot be written is one error naming it. Under DDP rank 0's outcome is
    broadcast: every rank stops together when the folder is not ours."""
    lock = FolderLock(out, "train") if dist.is_main else None
    made = not out.exists()
    failure: BaseException | None = None
    if lock is not None:
        try:
            lock.acquire()
        except FolderBusy as e:
            failure = e
        except OSError as e:
            failure = OSError(e.errno, f"cannot write in this output folder ({e.strerror or e})", str(out))
    message = D.broadcast_object(None if failure is None else str(failure))
    if failure is not None:
        raise failure
    if message is not None:  # another rank: rank 0 could not own the folder
        raise ValueError(f"rank {dist.rank}: rank 0 stopped: {message}")
    try:
        yield
    finally:
        if lock is not None:
            lock.release()
            if made:
                with contextlib.suppress(OSError):
                    out.rmdir()  # only if empty: a run refused before writing anything
