"""Hostile but realistic inputs against the real ``litepose`` command line (issue #23, "never destroy,
never lie").

Every case runs ``python -m litepose VERB ...`` in a subprocess (``OMP_NUM_THREADS=1``, ``--threads 1``,
tiny generated inputs, ``--model litepose-xs --input-size 64 --no-flip`` random weights) and checks,
besides what is particular to it:

- no Python traceback and no "internal error ... this is a bug in litepose" line;
- the exit code is a documented one (0, 1, 2, 130, 143; never a death by a signal) and the one
  expected for the case;
- exit 2 is exactly one error line on stderr, ``litepose VERB: error: ...``, the last one, and
  under ``--json`` stdout is exactly one JSON object (``{"error", "exit_code"}`` for an error);
- no input changed: every input file or folder is hashed before and after (contents, the set of
  names, symlink targets);
- no lost or broken output where output is due (signals included): JSON files parse, every JSON
  line parses, each ``.mp4`` opens with :class:`litepose.media.VideoReader` with as many frames as
  its ``.jsonl`` has lines, checkpoints load; and nothing is left behind anywhere in the case's
  folder: no ``.*.tmp``, no ``.litepose-*.partial.*``, no ``.litepose.lock``.

Usage: python benchmarks/hostile.py [--only SUBSTR] [--json FILE] [--keep] [--list] [--timeout S]

Prints a markdown table (case, category, expected exit, exit, seconds, verdict), the totals and
the details of every failing case; exits 0 only when every case passed (skipped cases do not fail).
Real data is read in place from ``../shared/data`` beside the repository (cases that need it are
skipped with the reason when it is absent); everything else is generated into a temporary folder.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = (REPO / ".." / "shared").resolve()
FAST = ["--model", "litepose-xs", "--input-size", "64", "--no-flip", "--threads", "1"]
DOCUMENTED = {0: "ok", 1: "predict processed nothing", 2: "error", 130: "SIGINT", 143: "SIGTERM"}
TIMEOUT = 120.0
LEFTOVER = (re.compile(r"^\..+\.tmp$"), re.compile(r"^\.litepose-.*\.partial\..*$"), re.compile(r"^\.litepose\.lock$"))


def shown(text: Any) -> str:
    """Any path or text, printable (bytes that are not UTF-8 as \\xNN)."""
    s = os.fsdecode(text) if isinstance(text, bytes) else str(text)
    return s.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _clip(text: str, limit: int = 400) -> str:
    """``text`` of at most ``limit`` characters, keeping its start and its end (where a cause is)."""
    return text if len(text) <= limit else f"{text[: limit // 2]} ... {text[-(limit // 2 - 5) :]}"


# -- the registry ---------------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    category: str
    expect: tuple[int, ...]
    fn: Callable[[Ctx], None]


CASES: list[Case] = []


def case(name: str, category: str, expect: int | tuple[int, ...]) -> Callable:
    """Register ``fn(ctx)`` as a case; ``expect``: the exit code(s) its main run must give."""

    def register(fn: Callable[[Ctx], None]) -> Callable[[Ctx], None]:
        CASES.append(Case(name, category, expect if isinstance(expect, tuple) else (expect,), fn))
        return fn

    return register


class Skip(Exception):
    """The case cannot run here (the reason is its message)."""


# -- running the command line ---------------------------------------------------------------------


@dataclass
class Proc:
    """A finished litepose run."""

    argv: list[str]
    verb: str
    rc: int
    out: str
    err: str
    seconds: float
    json: bool
    obj: Any = None  # stdout's JSON object under --json

    def tail(self, n: int = 4) -> str:
        lines = [line for line in self.err.replace("\r", "\n").splitlines() if line.strip()]
        return "\n".join(_clip(shown(line)) for line in lines[-n:])


@dataclass
class Running:
    popen: subprocess.Popen
    argv: list[str]
    verb: str
    json: bool
    out_file: Path
    err_file: Path
    t0: float
    copiers: list[threading.Thread]

    def err_text(self) -> str:
        try:
            return self.err_file.read_bytes().decode("utf-8", "replace")
        except OSError:
            return ""


def _copier(pipe: Any, path: Path) -> threading.Thread:
    """A thread that copies ``pipe`` into ``path`` as it comes (flushed, so that it can be polled)."""

    def copy() -> None:
        with open(path, "wb") as f:
            for block in iter(lambda: os.read(pipe.fileno(), 65536), b""):
                f.write(block)
                f.flush()
        pipe.close()

    t = threading.Thread(target=copy, daemon=True)
    t.start()
    return t


def _env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=str(REPO), LITEPOSE_HOME=str(home))
    env.pop("LITEPOSE_WEIGHTS_URL", None)
    env.pop("LITEPOSE_WEIGHTS_REGISTRY", None)
    env.update(extra or {})
    return env


def _file_size_limit(limit: int) -> Callable[[], None]:
    """A child's ``preexec_fn``: files it writes may not grow beyond ``limit`` bytes (a full disk,
    simulated without privileges: a write past it fails with EFBIG, as SIGXFSZ is ignored)."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@dataclass
class Ctx:
    """One case: its folder, its inputs (hashed), its outputs (validated) and what went wrong."""

    case: Case
    root: Path
    fixtures: Fixtures
    timeout: float
    dir: Path = field(init=False)
    logs: Path = field(init=False)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    snapshots: dict[str, dict[str, str]] = field(default_factory=dict)
    output_dirs: list[tuple[Path, tuple[str, ...]]] = field(default_factory=list)
    allowed_leftovers: set[str] = field(default_factory=set)
    main: Proc | None = None
    runs: int = 0

    def __post_init__(self) -> None:
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.case.name)
        self.dir = self.root / "cases" / slug
        self.logs = self.root / "logs" / slug
        self.dir.mkdir(parents=True)
        self.logs.mkdir(parents=True)

    # what to check

    def fail(self, reason: str) -> None:
        self.problems.append(reason)

    def check(self, ok: Any, reason: str) -> bool:
        if not ok:
            self.fail(reason)
        return bool(ok)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def inputs(self, *paths: Path | str) -> None:
        """Hash these inputs now; they must be the same when the case ends."""
        for p in paths:
            self.snapshots[str(p)] = snapshot(Path(p))

    def outputs(self, folder: Path, *need: str) -> None:
        """Validate ``folder`` when the case ends; the names in ``need`` must exist there."""
        self.output_dirs.append((Path(folder), need))

    def allow_leftover(self, path: Path) -> None:
        self.allowed_leftovers.add(str(path))

    # running litepose

    def _argv(self, verb: str, args: tuple[Any, ...], as_json: bool) -> list[str]:
        words = [a if isinstance(a, bytes) else str(a) for a in args]
        return [sys.executable, "-m", "litepose", verb, *(["--json"] if as_json else []), *words]

    def start(
        self, verb: str, *args: Any, json_out: bool = False, cwd: Path | None = None,
        env: dict[str, str] | None = None, preexec: Callable[[], None] | None = None,
    ) -> Running:  # fmt: skip
        self.runs += 1
        argv = self._argv(verb, args, json_out)
        out_file, err_file = self.logs / f"{self.runs}.out", self.logs / f"{self.runs}.err"
        # pipes, copied to the log files by this process: a child's file-size limit (preexec) is not theirs
        popen = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd or self.dir,
            env=_env(self.root / "home", env), start_new_session=True, preexec_fn=preexec,
        )  # fmt: skip
        copiers = [_copier(popen.stdout, out_file), _copier(popen.stderr, err_file)]
        return Running(popen, argv, verb, json_out, out_file, err_file, time.monotonic(), copiers)

    def wait(self, r: Running, expect: tuple[int, ...] | int | None = (), judge: bool = True,
             timeout: float | None = None) -> Proc:  # fmt: skip
        """Wait for ``r`` (killing its process group after the timeout), then judge it: the checks
        every run gets, and its exit code against ``expect`` (default: the case's; None: any)."""
        try:
            rc = r.popen.wait(timeout=timeout or self.timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(r.popen.pid, signal.SIGKILL)
            rc = r.popen.wait()
            self.fail(f"{r.verb}: still running after {timeout or self.timeout:.0f} s (killed)")
            judge = False
        for t in r.copiers:
            t.join(timeout=30)
        proc = Proc(
            r.argv, r.verb, rc, r.out_file.read_bytes().decode("utf-8", "replace"), r.err_text(),
            time.monotonic() - r.t0, r.json,
        )  # fmt: skip
        if judge:
            self.judge(proc, self.case.expect if expect == () else expect)
        return proc

    def cli(
        self, verb: str, *args: Any, expect: tuple[int, ...] | int | None = (), json_out: bool = True,
        cwd: Path | None = None, env: dict[str, str] | None = None, preexec: Callable[[], None] | None = None,
        main: bool = True, timeout: float | None = None,
    ) -> Proc:  # fmt: skip
        """Run ``litepose VERB ARGS`` to its end and judge it (see :meth:`wait`); ``main``: the run
        whose exit code the table shows."""
        proc = self.wait(self.start(verb, *args, json_out=json_out, cwd=cwd, env=env, preexec=preexec), expect,
                         timeout=timeout)  # fmt: skip
        if main:
            self.main = proc
        return proc

    def judge(self, p: Proc, expect: tuple[int, ...] | int | None) -> None:
        """The checks every run gets (module docstring)."""
        who = f"{p.verb} run {self.runs}"
        if p.rc < 0:
            self.fail(f"{who}: killed by {signal.Signals(-p.rc).name}")
        elif p.rc not in DOCUMENTED:
            self.fail(f"{who}: exit code {p.rc} is not a documented one")
        if isinstance(expect, int):
            expect = (expect,)
        if expect is not None and p.rc not in expect:
            want = " or ".join(str(e) for e in expect)
            self.fail(f"{who}: exit {p.rc}, expected {want}")
        if "Traceback (most recent call last)" in p.err:
            last = [line for line in p.err.splitlines() if line.strip()]
            self.fail(f"{who}: a Python traceback on stderr ({shown(last[-1])[:200] if last else ''})")
        for text in ("internal error", "this is a bug in litepose"):
            if text in p.err or text in p.out:
                self.fail(f"{who}: says '{text}'")
                break
        lines = [line for line in p.err.replace("\r", "\n").splitlines() if line.strip()]
        errors = [line for line in lines if re.match(r"^litepose [\w-]+: error:", line)]
        if p.rc == 2:
            if len(errors) != 1:
                self.fail(f"{who}: exit 2 with {len(errors)} 'litepose VERB: error:' lines on stderr, expected one")
            elif not errors[0].startswith(f"litepose {p.verb}: error:"):
                self.fail(f"{who}: the error line names another verb: {shown(errors[0])[:200]}")
            elif lines[-1] != errors[0]:
                self.fail(f"{who}: the error line is not the last line of stderr (then: {shown(lines[-1])[:200]})")
        elif errors:
            self.fail(f"{who}: exit {p.rc} but an error line: {shown(errors[0])[:200]}")
        if p.json:
            try:
                p.obj = json.loads(p.out)
            except ValueError as e:
                self.fail(f"{who}: --json stdout is not exactly one JSON object ({e}; {len(p.out)} chars)")
                return
            if not isinstance(p.obj, dict):
                self.fail(f"{who}: --json stdout is a {type(p.obj).__name__}, not an object")
            elif p.rc == 2 and not (isinstance(p.obj.get("error"), str) and p.obj.get("exit_code") == 2):
                self.fail(f"{who}: exit 2 but the JSON object is not {{error, exit_code: 2}}: {sorted(p.obj)}")

    def wait_for(self, r: Running, ready: Callable[[], bool], what: str, timeout: float = 90.0) -> bool:
        """Poll ``ready`` while ``r`` runs; False (a problem noted) when it ended first or took too long."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                if ready():
                    return True
            if r.popen.poll() is not None:
                self.fail(f"{r.verb} ended (exit {r.popen.returncode}) before {what}: the case is too short to test")
                tail = r.err_text().strip().splitlines()[-3:]
                self.note("stderr: " + " | ".join(shown(t)[:200] for t in tail))
                return False
            time.sleep(0.05)
        self.fail(f"{r.verb}: no {what} after {timeout:.0f} s")
        return False

    def signal(self, r: Running, sig: int, ready: Callable[[], bool], what: str, expect: int, *,
               then: str = "") -> Proc | None:  # fmt: skip
        """Send ``sig`` to ``r`` once ``ready`` holds; wait for the exit code ``expect``. ``then``:
        ``"again"``: the same signal once more, 30 ms after the run said it would stop after the current
        item; ``"hammer"``: again every 10 ms until the process ends (a user pressing Ctrl-C repeatedly)."""
        if not self.wait_for(r, ready, what):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(r.popen.pid, signal.SIGKILL)
            r.popen.wait()
            return None
        r.popen.send_signal(sig)
        if then == "again":
            if self.wait_for(r, lambda: "stopping after the current item" in r.err_text(), "the stop notice", 30):
                time.sleep(0.03)
                with contextlib.suppress(ProcessLookupError):
                    r.popen.send_signal(sig)
        elif then == "hammer":
            while r.popen.poll() is None:
                time.sleep(0.01)
                with contextlib.suppress(ProcessLookupError):
                    r.popen.send_signal(sig)
        proc = self.wait(r, expect)
        self.main = proc
        return proc

    # the end of the case

    def finish(self) -> None:
        for key, before in self.snapshots.items():
            after = snapshot(Path(key))
            if after != before:
                self.fail(f"input changed: {shown(key)}: {diff(before, after)}")
        for folder, need in self.output_dirs:
            for name in need:
                if not os.path.lexists(folder / name):
                    self.fail(f"output missing: {shown(folder / name)}")
            for problem in validate_outputs(folder):
                self.fail(problem)
        for dirpath, dirnames, filenames in os.walk(self.dir):
            for name in dirnames + filenames:
                p = os.path.join(dirpath, name)
                if p not in self.allowed_leftovers and any(rx.match(name) for rx in LEFTOVER):
                    self.fail(f"left behind: {shown(os.path.relpath(p, self.dir))}")


# -- hashing inputs, validating outputs -----------------------------------------------------------


def _digest(p: str) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _entry(p: str) -> str:
    st = os.lstat(p)
    if stat.S_ISLNK(st.st_mode):
        return "link:" + shown(os.readlink(p))
    if stat.S_ISDIR(st.st_mode):
        return "dir"
    if stat.S_ISREG(st.st_mode):
        return "file:" + _digest(p)
    return f"special:{stat.S_IFMT(st.st_mode):o}"


def snapshot(path: Path) -> dict[str, str]:
    """``{relative name: what it is}`` for a file, a symlink or a whole folder (symlinks not followed)."""
    p = str(path)
    if not os.path.lexists(p):
        return {".": "missing"}
    found = {".": _entry(p)}
    if found["."] == "dir":
        for dirpath, dirnames, filenames in os.walk(p, followlinks=False):
            for name in dirnames + filenames:
                full = os.path.join(dirpath, name)
                found[os.path.relpath(full, p)] = _entry(full)
    return found


def diff(before: dict[str, str], after: dict[str, str]) -> str:
    gone = sorted(set(before) - set(after))
    new = sorted(set(after) - set(before))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    parts = []
    for what, names in (("removed", gone), ("added", new), ("changed", changed)):
        if names:
            parts.append(f"{what} {', '.join(shown(n) for n in names[:4])}" + (" ..." if len(names) > 4 else ""))
    return "; ".join(parts)


def count_frames(path: Path) -> int:
    from litepose.media import VideoReader

    return sum(1 for _ in VideoReader(path))


def validate_outputs(folder: Path) -> list[str]:
    """Every output in ``folder`` whole: JSON parses, each JSON line parses (and ends with a newline),
    each video plays with as many frames as its JSON lines, images decode, checkpoints load."""
    import cv2
    import numpy as np

    problems: list[str] = []
    if not folder.is_dir():
        return problems
    for dirpath, _, filenames in os.walk(folder):
        for name in filenames:
            p = Path(dirpath) / name
            if name.startswith(".") or p.is_symlink():
                continue
            where = shown(p.relative_to(folder.parent))
            suffix = p.suffix.lower()
            try:
                if suffix == ".json":
                    json.loads(p.read_bytes())
                elif suffix == ".jsonl":
                    data = p.read_bytes()
                    if data and not data.endswith(b"\n"):
                        problems.append(f"{where}: its last line is cut (no newline at the end)")
                    for n, line in enumerate(data.splitlines()):
                        if line.strip():
                            try:
                                json.loads(line)
                            except ValueError:
                                problems.append(f"{where}: line {n + 1} is not JSON")
                                break
                elif suffix == ".mp4":
                    frames = count_frames(p)
                    jsonl = p.with_suffix(".jsonl")
                    if frames == 0:
                        problems.append(f"{where}: no frame can be read")
                    if jsonl.is_file():
                        lines = sum(1 for line in jsonl.read_bytes().splitlines() if line.strip())
                        if lines != frames:
                            problems.append(f"{where}: {frames} frames but {lines} lines in {jsonl.name}")
                elif suffix in (".jpg", ".png"):
                    if cv2.imdecode(np.fromfile(p, np.uint8), cv2.IMREAD_COLOR) is None:
                        problems.append(f"{where}: the image does not decode")
                elif suffix == ".pth":
                    if name == "last.pth":
                        from litepose.engine.checkpoint import load_training_state

                        load_training_state(p)
                    else:
                        from litepose.models.checkpoint import read_state_dict

                        read_state_dict(p)
            except Exception as e:
                problems.append(f"{where}: cannot be read back ({type(e).__name__}: {shown(e)[:200]})")
    return problems


# -- generated inputs -----------------------------------------------------------------------------


def write_bytes(path: Path | str, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:  # Python's open: a name of any bytes
        f.write(data)
    return path


def image(path: Path | str, h: int = 48, w: int = 64, seed: int = 0, array: Any = None) -> Path:
    import cv2
    import numpy as np

    path = Path(path)
    a = np.random.default_rng(seed).integers(0, 255, (h, w, 3), np.uint8) if array is None else array
    ok, buf = cv2.imencode(path.suffix if path.suffix.lower() in (".jpg", ".png", ".bmp") else ".jpg", a)
    assert ok
    return write_bytes(path, buf.tobytes())


def video(path: Path | str, frames: int, h: int = 48, w: int = 64) -> Path:
    import cv2
    import numpy as np

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent)) / "v.mp4"  # OpenCV gets a plain name
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (w, h))
    rng = np.random.default_rng(1)
    for _ in range(frames):
        writer.write(rng.integers(0, 255, (h, w, 3), np.uint8))
    writer.release()
    os.replace(tmp, path)
    tmp.parent.rmdir()
    return path


def png_bomb(path: Path, width: int, height: int) -> Path:
    """A small PNG whose header claims ``width`` x ``height`` pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 4096, 9)) + chunk(b"IEND", b"")
    return write_bytes(path, b"\x89PNG\r\n\x1a\n" + body)


def exif_rotated(path: Path, w: int = 64, h: int = 48) -> Path:
    """A JPEG stored ``w`` x ``h`` whose EXIF orientation (6) says: turn it 90 degrees clockwise."""
    import numpy as np
    from PIL import Image

    im = Image.fromarray(np.random.default_rng(3).integers(0, 255, (h, w, 3), np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, exif=exif)
    return path


class Fixtures:
    """Inputs shared by several cases, made once, copied into each case that uses them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._made: dict[str, Path] = {}

    def _once(self, key: str, make: Callable[[Path], None]) -> Path:
        if key not in self._made:
            p = self.root / key
            make(p)
            self._made[key] = p
        return self._made[key]

    def dataset(self, n: int, size: str = "64x48", sequence: int = 0) -> Path:
        from litepose.data.synth import make_synthpose

        def make(p: Path) -> None:
            make_synthpose(p, n, seed=7, size=size, sequence=sequence, progress=False)

        return self._once(f"ds-{n}-{size}-{sequence}", make)

    def checkpoint(self, supernet: bool = False) -> Path:
        def make(p: Path) -> None:
            from litepose.models import create_model
            from litepose.models.checkpoint import save_checkpoint

            save_checkpoint(create_model("litepose-super" if supernet else "litepose-xs"), p)

        return self._once("super.pth" if supernet else "xs.pth", make)

    def video(self, frames: int) -> Path:
        return self._once(f"v{frames}.mp4", lambda p: video(p, frames))

    def copy(self, src: Path, dst: Path) -> Path:
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, symlinks=True)
        else:
            shutil.copyfile(src, dst)
        return dst


def shared(*parts: str) -> Path:
    p = SHARED.joinpath(*parts)
    if not p.exists():
        raise Skip(f"{p} is absent (real data from ../shared/data)")
    return p


def train_config(path: Path, data: Path, **sections: dict[str, Any]) -> Path:
    """A small training config (yaml) on the SynthPose folder ``data``, with ``sections`` merged in."""
    import yaml

    cfg: dict[str, Any] = {
        "model": {"arch": "litepose-xs", "input_size": 64},
        "data": {"train": str(data), "workers": 0},
        "train": {"epochs": 1, "batch_size": 2, "lr": 0.001, "device": "cpu", "max_steps_per_epoch": 2,
                  "lr_steps": []},
        "val": {"every": 0},
    }  # fmt: skip
    for key, values in sections.items():
        cfg.setdefault(key, {}).update(values)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg))
    return path


def lock_holder(ctx: Ctx, folder: Path) -> subprocess.Popen:
    """A live process that owns ``folder`` (litepose's FolderLock) until its stdin is closed."""
    code = (
        "import sys; from litepose.files import FolderLock as L; lock = L(sys.argv[1], 'holder-test').acquire(); "
        "print('held', flush=True); sys.stdin.read(); lock.release()"
    )
    p = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         env=_env(ctx.root / "home"))  # fmt: skip
    assert p.stdout is not None and p.stdout.readline().strip() == b"held", "the lock holder did not start"
    return p


def lines_of(path: Path) -> int:
    return sum(1 for line in path.read_bytes().splitlines() if line.strip()) if path.is_file() else 0


# == the cases ====================================================================================
# -- images ---------------------------------------------------------------------------------------


def _one_image(ctx: Ctx, name: str, make: Callable[[Path], Any], *extra: str) -> Proc:
    src = ctx.dir / "in" / name
    make(src)
    ctx.inputs(ctx.dir / "in")
    out = ctx.dir / "out"
    proc = ctx.cli("predict", src, *FAST, "--output", out, "--save-json", *extra)
    ctx.outputs(out)
    return proc


def _skipped(ctx: Ctx, proc: Proc, *words: str) -> None:
    if isinstance(proc.obj, dict):
        skipped = proc.obj.get("skipped") or []
        reasons = " ".join(str(s.get("reason", "")) for s in skipped)
        if ctx.check(skipped, "the summary lists no skipped input"):
            for w in words:
                ctx.check(w in reasons, f"the skipped reason does not say '{w}': {reasons[:200]}")


@case("image: empty file", "images", 1)
def _(ctx: Ctx) -> None:
    _skipped(ctx, _one_image(ctx, "empty.jpg", lambda p: write_bytes(p, b"")), "empty")


@case("image: truncated PNG", "images", 1)
def _(ctx: Ctx) -> None:
    def make(p: Path) -> None:
        data = image(ctx.dir / "tmp.png", 96, 128).read_bytes()
        (ctx.dir / "tmp.png").unlink()
        write_bytes(p, data[: len(data) // 3])

    _skipped(ctx, _one_image(ctx, "cut.png", make))


@case("image: truncated JPEG (sound header)", "images", (0, 1))
def _(ctx: Ctx) -> None:
    def make(p: Path) -> None:
        data = image(ctx.dir / "tmp.jpg", 96, 128).read_bytes()
        (ctx.dir / "tmp.jpg").unlink()
        write_bytes(p, data[: len(data) // 2])

    proc = _one_image(ctx, "cut.jpg", make)
    ctx.note(f"exit {proc.rc}: {'decoded partially' if proc.rc == 0 else 'skipped'} (either is documented)")


@case("image: text file renamed .jpg", "images", 1)
def _(ctx: Ctx) -> None:
    _skipped(ctx, _one_image(ctx, "notes.jpg", lambda p: write_bytes(p, b"meeting notes\nnot a photo\n")))


@case("image: PNG bomb (header claims 100000x100000)", "images", 1)
def _(ctx: Ctx) -> None:
    proc = _one_image(ctx, "bomb.png", lambda p: png_bomb(p, 100_000, 100_000))
    _skipped(ctx, proc, "megapixels")
    ctx.check(proc.seconds < 60, f"took {proc.seconds:.0f} s: the header should refuse it at once")


@case("image: 1x1 pixel PNG", "images", 0)
def _(ctx: Ctx) -> None:
    _one_image(ctx, "dot.png", lambda p: image(p, 1, 1))


@case("image: 16-bit PNG", "images", 0)
def _(ctx: Ctx) -> None:
    import numpy as np

    a = np.random.default_rng(0).integers(0, 65535, (48, 64, 3), np.uint16)
    _one_image(ctx, "deep.png", lambda p: image(p, array=a))
    ctx.outputs(ctx.dir / "out", "deep.jpg", "results.json")


@case("image: grayscale JPEG", "images", 0)
def _(ctx: Ctx) -> None:
    import numpy as np

    a = np.random.default_rng(0).integers(0, 255, (48, 64), np.uint8)
    _one_image(ctx, "gray.jpg", lambda p: image(p, array=a))
    ctx.outputs(ctx.dir / "out", "gray.jpg")


@case("image: RGBA PNG", "images", 0)
def _(ctx: Ctx) -> None:
    import numpy as np

    a = np.random.default_rng(0).integers(0, 255, (48, 64, 4), np.uint8)
    _one_image(ctx, "alpha.png", lambda p: image(p, array=a))
    ctx.outputs(ctx.dir / "out", "alpha.jpg")


@case("image: EXIF-rotated JPEG (orientation 6)", "images", 0)
def _(ctx: Ctx) -> None:
    import cv2

    proc = _one_image(ctx, "phone.jpg", lambda p: exif_rotated(p, 64, 48))
    overlay = ctx.dir / "out" / "phone.jpg"
    if proc.rc == 0 and ctx.check(overlay.is_file(), "no overlay"):
        h, w = cv2.imread(str(overlay)).shape[:2]
        ctx.check((w, h) == (48, 64), f"the overlay is {w}x{h}, expected the upright 48x64")
    if isinstance(proc.obj, dict):
        ctx.check(proc.obj.get("frame") == "upright", f"summary frame is {proc.obj.get('frame')!r}")
    results = ctx.dir / "out" / "results.json"
    if results.is_file():
        rs = json.loads(results.read_text())
        ctx.check(all(r.get("frame") == "upright" for r in rs), "a result of the turned image lacks frame=upright")


@case("image: folder of good, empty, text, bomb, fifo, dangling link, .txt", "images", 0)
def _(ctx: Ctx) -> None:
    d = ctx.dir / "in"
    image(d / "good.jpg")
    write_bytes(d / "empty.jpg", b"")
    write_bytes(d / "text.png", b"hello")
    png_bomb(d / "bomb.png", 90_000, 90_000)
    write_bytes(d / "readme.txt", b"not an image")
    os.mkfifo(d / "pipe.jpg")
    (d / "gone.jpg").symlink_to(d / "nowhere.jpg")
    ctx.inputs(d)
    out = ctx.dir / "out"
    proc = ctx.cli("predict", d, *FAST, "--save-json", "--output", out)
    ctx.outputs(out, "good.jpg", "results.json")
    if isinstance(proc.obj, dict):
        ctx.check(proc.obj.get("images") == 1, f"images: {proc.obj.get('images')}, expected 1")
        skipped = {Path(s["source"]).name for s in proc.obj.get("skipped", [])}
        want = {"empty.jpg", "text.png", "bomb.png", "readme.txt"}
        ctx.check(want <= skipped, f"not reported as skipped: {sorted(want - skipped)}")


# -- file names -----------------------------------------------------------------------------------


@case("names: spaces, parentheses and # in folder and file names", "names", 0)
def _(ctx: Ctx) -> None:
    d = ctx.dir / "my photos (2024) #1"
    image(d / "beach day (1) #2.jpg")
    ctx.inputs(d)
    out = ctx.dir / "out put (x)"
    ctx.cli("predict", d, *FAST, "--output", out, "--save-json")
    ctx.outputs(out, "beach day (1) #2.jpg", "results.json")


@case("names: unicode (accents, CJK, emoji)", "names", 0)
def _(ctx: Ctx) -> None:
    d = ctx.dir / "fotos_Zoë_人"
    image(d / "ünï 人物 🙂.jpg")
    ctx.inputs(d)
    out = ctx.dir / "出力"
    ctx.cli("predict", d, *FAST, "--output", out, "--save-json", "--track")
    ctx.outputs(out, "ünï 人物 🙂.jpg", "results.json", "fotos_Zoë_人.jsonl")


@case("names: bytes that are not UTF-8 (image + video, --track)", "names", 0)
def _(ctx: Ctx) -> None:
    if sys.platform == "darwin":
        raise Skip("macOS file systems refuse names that are not UTF-8")
    root = os.fsencode(ctx.dir)
    d = Path(os.fsdecode(root + b"/in\xff"))
    image(Path(os.fsdecode(os.fsencode(d) + b"/p\xfe.jpg")))
    ctx.fixtures.copy(ctx.fixtures.video(6), Path(os.fsdecode(os.fsencode(d) + b"/cl\xfdip.mp4")))
    ctx.inputs(d)
    out = Path(os.fsdecode(root + b"/out\xfc"))
    proc = ctx.cli("predict", d, *FAST, "--output", out, "--save-json", "--track")
    ctx.outputs(out, os.fsdecode(b"p\xfe.jpg"), os.fsdecode(b"cl\xfdip.mp4"), os.fsdecode(b"cl\xfdip.jsonl"),
                "results.json")  # fmt: skip
    if isinstance(proc.obj, dict):
        ctx.check(proc.obj.get("video_frames") == 6, f"video_frames {proc.obj.get('video_frames')}, expected 6")


@case("names: leading dash given as ./-x.jpg", "names", 0)
def _(ctx: Ctx) -> None:
    image(ctx.dir / "-x.jpg")
    ctx.inputs(ctx.dir / "-x.jpg")
    ctx.cli("predict", "./-x.jpg", *FAST, "--output", "out")
    ctx.outputs(ctx.dir / "out", "-x.jpg")


@case("names: leading dash given bare (-x.jpg: a usage error)", "names", 2)
def _(ctx: Ctx) -> None:
    image(ctx.dir / "-x.jpg")
    ctx.inputs(ctx.dir)
    ctx.cli("predict", "-x.jpg", *FAST, "--output", ctx.dir / "out")
    ctx.check(not (ctx.dir / "out").exists(), "an output folder was made")


@case("names: leading dash after -- (predict ... -- -x.jpg)", "names", 0)
def _(ctx: Ctx) -> None:
    image(ctx.dir / "in" / "-x.jpg")
    ctx.inputs(ctx.dir / "in")
    ctx.cli("predict", *FAST, "--output", ctx.dir / "out", "--", "-x.jpg", cwd=ctx.dir / "in")
    ctx.outputs(ctx.dir / "out", "-x.jpg")


@case("names: 255-byte image name", "names", 0)
def _(ctx: Ctx) -> None:
    name = "a" * 251 + ".jpg"
    _one_image(ctx, name, lambda p: image(p))
    ctx.outputs(ctx.dir / "out", name, "results.json")


@case("names: 255-byte video name (its .jsonl name would be 257 bytes)", "names", (1, 2))
def _(ctx: Ctx) -> None:
    src = ctx.dir / "in" / ("v" * 251 + ".mp4")
    ctx.fixtures.copy(ctx.fixtures.video(5), src)
    ctx.inputs(ctx.dir / "in")
    out = ctx.dir / "out"
    proc = ctx.cli("predict", src, *FAST, "--output", out)
    ctx.outputs(out)
    ctx.check("too long" in proc.err.lower(), "the message does not say the name is too long")
    ctx.note(f"exit {proc.rc} ({'skipped' if proc.rc == 1 else 'refused'}); stderr: {proc.tail(1)}")


@case("names: a.jpg and a.png in one folder (overlays must not overwrite each other)", "names", 0)
def _(ctx: Ctx) -> None:
    d = ctx.dir / "in"
    image(d / "a.jpg", seed=1)
    image(d / "a.png", seed=2)
    ctx.inputs(d)
    out = ctx.dir / "out"
    proc = ctx.cli("predict", d, *FAST, "--output", out)
    ctx.outputs(out)
    overlays = sorted(p.name for p in out.glob("*.jpg")) if out.is_dir() else []
    ctx.check(len(overlays) == 2, f"overlays {overlays}: expected two for two images")
    if isinstance(proc.obj, dict):
        ctx.check(proc.obj.get("images") == 2, f"images {proc.obj.get('images')}")


# -- folders and sources --------------------------------------------------------------------------


@case("folder: empty", "folders", 2)
def _(ctx: Ctx) -> None:
    (ctx.dir / "in").mkdir()
    ctx.inputs(ctx.dir / "in")
    ctx.cli("predict", ctx.dir / "in", *FAST, "--output", ctx.dir / "out")
    ctx.check(not (ctx.dir / "out").exists(), "an output folder was made for nothing")


@case("folder: only files that are not images", "folders", 1)
def _(ctx: Ctx) -> None:
    d = ctx.dir / "in"
    write_bytes(d / "a.txt", b"x")
    write_bytes(d / "b.csv", b"1,2")
    ctx.inputs(d)
    proc = ctx.cli("predict", d, *FAST, "--output", ctx.dir / "out")
    ctx.outputs(ctx.dir / "out")
    _skipped(ctx, proc, "not an image")


@case("folder: nested (a folder is not recursive; a ** glob is)", "folders", 0)
def _(ctx: Ctx) -> None:
    d = ctx.dir / "in"
    image(d / "top.jpg")
    image(d / "sub" / "deep.jpg", seed=1)
    ctx.inputs(d)
    proc = ctx.cli("predict", d, *FAST, "--output", ctx.dir / "out1")
    if isinstance(proc.obj, dict):
        ctx.check(proc.obj.get("images") == 1, f"folder: images {proc.obj.get('images')}, expected 1")
    proc = ctx.cli("predict", f"{d}/**/*.jpg", *FAST, "--output", ctx.dir / "out2")
    if isinstance(proc.obj, dict):
        ctx.check(proc.obj.get("images") == 2, f"glob: images {proc.obj.get('images')}, expected 2")
    ctx.outputs(ctx.dir / "out1", "top.jpg")
    ctx.outputs(ctx.dir / "out2", "top.jpg", "deep.jpg")


@case("folder: ** glob through a symlink loop", "folders", 0)
def _(ctx: Ctx) -> None:
    d = ctx.dir / "in"
    image(d / "a.jpg")
    (d / "loop").symlink_to(d, target_is_directory=True)
    ctx.inputs(d)
    proc = ctx.cli("predict", f"{d}/**/*.jpg", *FAST, "--output", ctx.dir / "out")
    ctx.outputs(ctx.dir / "out", "a.jpg")
    if isinstance(proc.obj, dict):
        ctx.note(f"images {proc.obj.get('images')} (the loop is not followed: 1)")
        ctx.check(proc.obj.get("images") == 1, f"the one image was read {proc.obj.get('images')} times")


@case("source: a named pipe (must not block)", "folders", 2)
def _(ctx: Ctx) -> None:
    os.mkfifo(ctx.dir / "pipe.jpg")
    ctx.inputs(ctx.dir / "pipe.jpg")
    ctx.cli("predict", ctx.dir / "pipe.jpg", *FAST, "--output", ctx.dir / "out", timeout=60)


@case("source: a glob that matches nothing", "folders", 2)
def _(ctx: Ctx) -> None:
    ctx.cli("predict", f"{ctx.dir}/nothing/*.jpg", *FAST, "--output", ctx.dir / "out")
    ctx.check(not (ctx.dir / "out").exists(), "an output folder was made for nothing")


# -- videos ---------------------------------------------------------------------------------------


@case("video: zero-byte .mp4", "videos", 1)
def _(ctx: Ctx) -> None:
    _skipped(ctx, _one_image(ctx, "empty.mp4", lambda p: write_bytes(p, b"")))
    ctx.check(not list((ctx.dir / "out").glob("*.mp4")), "an .mp4 was written for an empty video")


@case("video: real clip cut at 60% (its index is at the end)", "videos", (0, 1))
def _(ctx: Ctx) -> None:
    real = shared("data", "video", "mmaction2_demo_skeleton_two_people.mp4")
    data = real.read_bytes()
    proc = _one_image(ctx, "cut.mp4", lambda p: write_bytes(p, data[: int(len(data) * 0.6)]))
    ctx.note(f"exit {proc.rc}: " + ("frames kept" if proc.rc == 0 else "skipped: " + proc.tail(1)))


@case("video: real clip with garbage bytes in the middle", "videos", 0)
def _(ctx: Ctx) -> None:
    real = shared("data", "video", "mmaction2_demo_skeleton_two_people.mp4")
    data = bytearray(real.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 20000] = os.urandom(20000)
    proc = _one_image(ctx, "noisy.mp4", lambda p: write_bytes(p, bytes(data)))
    ctx.outputs(ctx.dir / "out", "noisy.mp4", "noisy.jsonl")
    if isinstance(proc.obj, dict):
        ctx.note(f"video_frames {proc.obj.get('video_frames')} of 72")


@case("video: real clip, --track --smooth (read in place)", "videos", 0)
def _(ctx: Ctx) -> None:
    real = shared("data", "video", "mmaction2_demo_skeleton_two_people.mp4")
    ctx.inputs(real)
    out = ctx.dir / "out"
    proc = ctx.cli("predict", real, *FAST, "--track", "--smooth", "--output", out)
    ctx.outputs(out, real.stem + ".mp4", real.stem + ".jsonl")
    if isinstance(proc.obj, dict):
        ctx.check(proc.obj.get("video_frames") == 72, f"video_frames {proc.obj.get('video_frames')}, expected 72")


@case("video: webcam index that does not exist", "videos", 1)
def _(ctx: Ctx) -> None:
    proc = ctx.cli("predict", "97", *FAST, "--output", ctx.dir / "out", timeout=60)
    ctx.outputs(ctx.dir / "out")
    _skipped(ctx, proc)


# -- outputs that would replace inputs ------------------------------------------------------------


def _photos(ctx: Ctx) -> Path:
    d = ctx.dir / "photos"
    image(d / "a.jpg", seed=1)
    image(d / "b.png", seed=2)
    ctx.fixtures.copy(ctx.fixtures.video(3), d / "clip.mp4")
    ctx.inputs(d)
    return d


@case("clash: --output is the input folder", "clashes", 2)
def _(ctx: Ctx) -> None:
    d = _photos(ctx)
    proc = ctx.cli("predict", d, *FAST, "--output", d, "--save-json")
    ctx.check("would replace" in proc.err, "the message does not say an input would be replaced")


@case("clash: --output . inside the input folder", "clashes", 2)
def _(ctx: Ctx) -> None:
    d = _photos(ctx)
    ctx.cli("predict", ".", *FAST, "--output", ".", cwd=d)


@case("clash: --output is a symlink to the input folder", "clashes", 2)
def _(ctx: Ctx) -> None:
    d = _photos(ctx)
    (ctx.dir / "link").symlink_to(d, target_is_directory=True)
    ctx.inputs(ctx.dir / "link")
    ctx.cli("predict", d, *FAST, "--output", ctx.dir / "link")


@case("clash: --output '' (empty string)", "clashes", 2)
def _(ctx: Ctx) -> None:
    d = _photos(ctx)
    ctx.cli("predict", d, *FAST, "--output", "", cwd=d)


@case("clash: --output is an existing file", "clashes", 2)
def _(ctx: Ctx) -> None:
    d = _photos(ctx)
    write_bytes(ctx.dir / "report.txt", b"keep me")
    ctx.inputs(ctx.dir / "report.txt")
    ctx.cli("predict", d / "a.jpg", *FAST, "--output", ctx.dir / "report.txt")


@case("clash: --output under a regular file (ENOTDIR)", "clashes", 2)
def _(ctx: Ctx) -> None:
    d = _photos(ctx)
    write_bytes(ctx.dir / "report.txt", b"keep me")
    ctx.inputs(ctx.dir / "report.txt")
    ctx.cli("predict", d / "a.jpg", *FAST, "--output", ctx.dir / "report.txt" / "out")


@case("clash: the output folder holds a hard link of the input", "clashes", 2)
def _(ctx: Ctx) -> None:
    d = _photos(ctx)
    out = ctx.dir / "out"
    out.mkdir()
    os.link(d / "a.jpg", out / "a.jpg")
    ctx.inputs(out)
    ctx.cli("predict", d / "a.jpg", *FAST, "--output", out)


@case("clash: --ann is the results.json predict would write", "clashes", 2)
def _(ctx: Ctx) -> None:
    d = _photos(ctx)
    ann = ctx.fixtures.copy(ctx.fixtures.dataset(3) / "annotations.json", ctx.dir / "ann" / "results.json")
    ctx.inputs(ann.parent)
    ctx.cli("predict", d / "a.jpg", *FAST, "--ann", ann, "--save-json", "--output", ann.parent)


@case("clash: val --results inside its own --output", "clashes", 2)
def _(ctx: Ctx) -> None:
    ds = ctx.fixtures.copy(ctx.fixtures.dataset(3), ctx.dir / "ds")
    res = write_bytes(ctx.dir / "out" / "metrics.json", b"[]")
    ctx.inputs(ds, ctx.dir / "out")
    ctx.cli("val", "--data", ds, "--results", res, "--output", ctx.dir / "out")


@case("clash: export --output is its own --weights", "clashes", 2)
def _(ctx: Ctx) -> None:
    ck = ctx.fixtures.copy(ctx.fixtures.checkpoint(), ctx.dir / "model.pth")
    ctx.inputs(ck)
    ctx.cli("export", "--weights", ck, "--format", "torchscript", "--output", ck)


@case("clash: transfer --output is its own --supernet", "clashes", 2)
def _(ctx: Ctx) -> None:
    sup = ctx.fixtures.copy(ctx.fixtures.checkpoint(supernet=True), ctx.dir / "super.pth")
    ctx.inputs(sup)
    ctx.cli("transfer", "--supernet", sup, "--arch", "litepose-xs", "--output", sup, "--threads", "1")


@case("clash: train --config is OUT/config.yaml of its own --output", "clashes", (0, 2))
def _(ctx: Ctx) -> None:
    ds = ctx.fixtures.copy(ctx.fixtures.dataset(4), ctx.dir / "ds")
    out = ctx.dir / "run"
    cfg = train_config(out / "config.yaml", ds)
    ctx.inputs(cfg, ds)
    proc = ctx.cli("train", "--config", cfg, "--output", out, "--threads", "1")
    ctx.note(f"exit {proc.rc}: " + ("trained" if proc.rc == 0 else proc.tail(1)))


@case("clash: OUT/.litepose.lock is a symlink to an input photo", "clashes", (0, 2))
def _(ctx: Ctx) -> None:
    d = _photos(ctx)
    out = ctx.dir / "out"
    out.mkdir()
    (out / ".litepose.lock").symlink_to(d / "a.jpg")
    ctx.allow_leftover(str(out / ".litepose.lock"))
    ctx.cli("predict", d / "b.png", *FAST, "--output", out)


@case("clash: OUT/.litepose.lock is a folder", "clashes", 2)
def _(ctx: Ctx) -> None:
    d = _photos(ctx)
    out = ctx.dir / "out"
    (out / ".litepose.lock").mkdir(parents=True)
    ctx.allow_leftover(str(out / ".litepose.lock"))
    ctx.cli("predict", d / "a.jpg", *FAST, "--output", out)


@case("clash: read-only output folder", "clashes", 2)
def _(ctx: Ctx) -> None:
    if os.geteuid() == 0:
        raise Skip("running as root: file permissions are not enforced")
    d = _photos(ctx)
    out = ctx.dir / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        ctx.cli("predict", d / "a.jpg", *FAST, "--output", out / "sub")
    finally:
        out.chmod(0o755)


# -- one run per output folder --------------------------------------------------------------------


@case("lock: two predicts into one folder at once", "concurrency", 2)
def _(ctx: Ctx) -> None:
    clip = ctx.fixtures.copy(ctx.fixtures.video(800), ctx.dir / "in" / "clip.mp4")
    image(ctx.dir / "in" / "b.jpg")
    ctx.inputs(ctx.dir / "in")
    out = ctx.dir / "out"
    first = ctx.start("predict", clip, *FAST, "--output", out, json_out=True)
    if not ctx.wait_for(first, lambda: lines_of(out / "clip.jsonl") >= 1, "the first run's first frame"):
        ctx.wait(first, None, judge=False)
        return
    second = ctx.cli("predict", ctx.dir / "in" / "b.jpg", *FAST, "--output", out)
    ctx.check(first.popen.poll() is None, "inconclusive: the first run had ended when the second one finished")
    ctx.check("in use" in second.err, "the refusal does not say the folder is in use")
    done = ctx.wait(first, 0)
    ctx.check(not (out / "b.jpg").exists(), "the refused run wrote its overlay")
    if isinstance(done.obj, dict):
        ctx.check(done.obj.get("video_frames") == 800, f"the first run did {done.obj.get('video_frames')} frames")
    ctx.outputs(out, "clip.mp4", "clip.jsonl")


@case("lock: a live holder refuses synth", "concurrency", 2)
def _(ctx: Ctx) -> None:
    out = ctx.dir / "ds"
    holder = lock_holder(ctx, out)
    try:
        proc = ctx.cli("synth", "--num-images", "2", "--size", "64x48", "--output", out)
        ctx.check("holder-test" in proc.err, "the refusal does not name the holder")
        ctx.check(not (out / "annotations.json").exists(), "the refused synth wrote a dataset")
    finally:
        holder.stdin.close()  # type: ignore[union-attr]
        holder.wait(timeout=30)


@case("lock: a live holder refuses val --output", "concurrency", 2)
def _(ctx: Ctx) -> None:
    ds = ctx.fixtures.copy(ctx.fixtures.dataset(3), ctx.dir / "ds")
    ctx.inputs(ds)
    out = ctx.dir / "out"
    holder = lock_holder(ctx, out)
    try:
        ctx.cli("val", "--data", ds, "--gt-as-results", "--output", out)
        ctx.check(not (out / "metrics.json").exists(), "the refused val wrote metrics.json")
    finally:
        holder.stdin.close()  # type: ignore[union-attr]
        holder.wait(timeout=30)


@case("lock: stale lock of a dead process is taken over", "concurrency", 0)
def _(ctx: Ctx) -> None:
    out = ctx.dir / "out"
    code = (
        "import os, sys; from litepose.files import FolderLock as L; L(sys.argv[1], 'dead run').acquire(); os._exit(9)"
    )
    subprocess.run([sys.executable, "-c", code, str(out)], env=_env(ctx.root / "home"), timeout=60, check=False)
    ctx.check((out / ".litepose.lock").is_file(), "setup: the dead run left no lock file")
    image(ctx.dir / "in" / "a.jpg")
    ctx.inputs(ctx.dir / "in")
    proc = ctx.cli("predict", ctx.dir / "in" / "a.jpg", *FAST, "--output", out)
    ctx.check("took over" in proc.err, "no notice that the dead run's lock was taken over")
    ctx.outputs(out, "a.jpg")


@case("lock: kill -9 of a predict mid-video, then the same command again", "concurrency", 0)
def _(ctx: Ctx) -> None:
    clip = ctx.fixtures.copy(ctx.fixtures.video(400), ctx.dir / "in" / "clip.mp4")
    ctx.inputs(ctx.dir / "in")
    out = ctx.dir / "out"
    first = ctx.start("predict", clip, *FAST, "--output", out)
    if ctx.wait_for(first, lambda: lines_of(out / "clip.jsonl") >= 5, "5 frames"):
        first.popen.kill()
    ctx.wait(first, None, judge=False)
    partial = sorted(p.name for p in out.glob(".litepose-*.partial.*"))
    for name in partial:
        ctx.allow_leftover(str(out / name))
    proc = ctx.cli("predict", clip, *FAST, "--output", out, "--max-people", "5")
    ctx.check("took over" in proc.err, "no notice that the killed run's lock was taken over")
    ctx.outputs(out, "clip.mp4", "clip.jsonl")
    still = sorted(p.name for p in out.glob(".litepose-*.partial.*"))
    if still:
        ctx.note(
            f"the killed run's {', '.join(still)} is still there after the rerun (documented: kill -9 may leave it)"
        )


@case("lock: a lock file of garbage bytes (nobody holds it)", "concurrency", 0)
def _(ctx: Ctx) -> None:
    out = ctx.dir / "out"
    write_bytes(out / ".litepose.lock", os.urandom(300))
    image(ctx.dir / "in" / "a.jpg")
    ctx.inputs(ctx.dir / "in")
    ctx.cli("predict", ctx.dir / "in" / "a.jpg", *FAST, "--output", out)
    ctx.outputs(out, "a.jpg")


# -- signals --------------------------------------------------------------------------------------


def _signal_video(ctx: Ctx, sig: int, *, then: str = "", slow: bool = False) -> None:
    clip = ctx.fixtures.copy(ctx.fixtures.video(600), ctx.dir / "in" / "clip.mp4")
    ctx.inputs(ctx.dir / "in")
    out = ctx.dir / "out"
    size = ["--input-size", "512"] if slow else []  # a frame takes long enough for a signal to land inside it
    r = ctx.start("predict", clip, *FAST, *size, "--output", out, json_out=True)
    proc = ctx.signal(r, sig, lambda: lines_of(out / "clip.jsonl") >= 3, "3 frames", 128 + sig, then=then)
    ctx.outputs(out, "clip.mp4", "clip.jsonl")
    if proc is not None and isinstance(proc.obj, dict) and "video_frames" in proc.obj:  # else stopped at once
        n = lines_of(out / "clip.jsonl")
        ctx.check(proc.obj.get("video_frames") == n, f"summary video_frames {proc.obj.get('video_frames')}, {n} lines")
        ctx.check(3 <= n < 600, f"{n} frames written: the signal did not stop the run")
        ctx.check(proc.obj.get("stopped") == signal.Signals(sig).name, f"summary stopped: {proc.obj.get('stopped')}")


@case("signal: SIGTERM on predict of a video", "signals", 143)
def _(ctx: Ctx) -> None:
    _signal_video(ctx, signal.SIGTERM)


@case("signal: SIGINT on predict of a video", "signals", 130)
def _(ctx: Ctx) -> None:
    _signal_video(ctx, signal.SIGINT)


@case("signal: SIGTERM again while the current frame finishes (stop at once)", "signals", 143)
def _(ctx: Ctx) -> None:
    _signal_video(ctx, signal.SIGTERM, then="again", slow=True)


@case("signal: Ctrl-C hammered (SIGINT every 10 ms until the end) on predict of a video", "signals", 130)
def _(ctx: Ctx) -> None:
    _signal_video(ctx, signal.SIGINT, then="hammer")


@case("signal: SIGTERM hammered (every 10 ms until the end) on predict of a video", "signals", 143)
def _(ctx: Ctx) -> None:
    _signal_video(ctx, signal.SIGTERM, then="hammer")


def _signal_folder(ctx: Ctx, sig: int, *extra: str) -> None:
    d = ctx.dir / "in"
    for i in range(1, 301):
        image(d / f"{i:04d}.png", seed=i)
    ctx.inputs(d)
    out = ctx.dir / "out"
    r = ctx.start("predict", d, *FAST, "--save-json", "--output", out, *extra, json_out=True)
    proc = ctx.signal(r, sig, lambda: len(list(out.glob("*.jpg"))) >= 3, "3 overlays", 128 + sig)
    ctx.outputs(out, "results.json", *(["in.jsonl"] if "--track" in extra else []))
    if proc is not None and (out / "results.json").is_file():
        done = {int(p.stem) for p in out.glob("*.jpg")}
        ids = {r["image_id"] for r in json.loads((out / "results.json").read_text())}
        ctx.check(ids <= done, f"results.json has ids of images without an overlay: {sorted(ids - done)[:5]}")
        ctx.check(3 <= len(done) < 300, f"{len(done)} overlays: the signal did not stop the run")
        if "--track" in extra:
            n = lines_of(out / "in.jsonl")
            ctx.check(n == len(done), f"{n} JSON lines for {len(done)} overlays")


@case("signal: SIGTERM on predict of a folder (--save-json)", "signals", 143)
def _(ctx: Ctx) -> None:
    _signal_folder(ctx, signal.SIGTERM)


@case("signal: SIGINT on predict of a folder (--track --save-json)", "signals", 130)
def _(ctx: Ctx) -> None:
    _signal_folder(ctx, signal.SIGINT, "--track")


@case("signal: SIGTERM while predict loads the model (before any item)", "signals", 143)
def _(ctx: Ctx) -> None:
    clip = ctx.fixtures.copy(ctx.fixtures.video(600), ctx.dir / "in" / "clip.mp4")
    ctx.inputs(ctx.dir / "in")
    out = ctx.dir / "out"
    r = ctx.start("predict", clip, *FAST, "--output", out, json_out=True)
    t0 = time.monotonic()
    ctx.signal(r, signal.SIGTERM, lambda: time.monotonic() - t0 > 1.0, "1 s", 143)
    ctx.outputs(out)


def _val_progress(r: Running, n: int) -> bool:
    found = re.findall(r"predict:\s+\d+%[^|]*\|[^|]*\|\s*(\d+)/", r.err_text())
    return bool(found) and int(found[-1]) >= n


def _signal_val(ctx: Ctx, sig: int) -> None:
    ds = ctx.fixtures.copy(ctx.fixtures.dataset(300), ctx.dir / "ds")
    ctx.inputs(ds)
    out = ctx.dir / "out"
    r = ctx.start("val", "--data", ds, *FAST, "--output", out, json_out=True)
    proc = ctx.signal(r, sig, lambda: _val_progress(r, 5), "5 images scored", 128 + sig)
    ctx.outputs(out, "results.json")
    ctx.check(not (out / "metrics.json").exists(), "metrics.json was written for part of the set")
    if proc is not None:
        ctx.check("kept the results so far" in proc.err, "no line saying the results so far were kept")


@case("signal: SIGTERM on val (--output)", "signals", 143)
def _(ctx: Ctx) -> None:
    _signal_val(ctx, signal.SIGTERM)


@case("signal: SIGINT on val (--output)", "signals", 130)
def _(ctx: Ctx) -> None:
    _signal_val(ctx, signal.SIGINT)


def _signal_synth(ctx: Ctx, sig: int) -> None:
    out = ctx.dir / "ds"
    r = ctx.start("synth", "--num-images", "20000", "--size", "64x48", "--output", out, json_out=True)
    images = out / "images"
    proc = ctx.signal(r, sig, lambda: images.is_dir() and len(os.listdir(images)) >= 5, "5 images", 128 + sig)
    ctx.outputs(out, "annotations.json")
    if proc is not None and (out / "annotations.json").is_file():
        data = json.loads((out / "annotations.json").read_text())
        listed = {im["file_name"] for im in data["images"]}
        on_disk = {f"images/{p.name}" for p in images.glob("*.jpg")} | {p.name for p in images.glob("*.jpg")}
        missing = [n for n in listed if n not in on_disk]
        ctx.check(not missing, f"annotations.json lists images that are not there: {missing[:3]}")
        ctx.check(len(data["images"]) == len(list(images.glob("*.jpg"))),
                  f"{len(data['images'])} images listed, {len(list(images.glob('*.jpg')))} on disk")  # fmt: skip
        ctx.check(5 <= len(listed) < 20000, f"{len(listed)} images: the signal did not stop the run")


@case("signal: SIGTERM on synth", "signals", 143)
def _(ctx: Ctx) -> None:
    _signal_synth(ctx, signal.SIGTERM)


@case("signal: SIGINT on synth", "signals", 130)
def _(ctx: Ctx) -> None:
    _signal_synth(ctx, signal.SIGINT)


@case("signal: SIGTERM on train (keeps a resumable last.pth)", "signals", 143)
def _(ctx: Ctx) -> None:
    ds = ctx.fixtures.copy(ctx.fixtures.dataset(8), ctx.dir / "ds")
    cfg = train_config(ctx.dir / "cfg.yaml", ds, train={"epochs": 100000, "max_steps_per_epoch": 2})
    ctx.inputs(ds, cfg)
    out = ctx.dir / "run"
    r = ctx.start("train", "--config", cfg, "--output", out, "--threads", "1", json_out=True)
    ctx.signal(r, signal.SIGTERM, lambda: lines_of(out / "metrics.jsonl") >= 1, "one epoch", 143)
    ctx.outputs(out, "last.pth", "metrics.jsonl")


# -- training configs -----------------------------------------------------------------------------


def _bad_config(ctx: Ctx, text: str | bytes, *overrides: str, words: tuple[str, ...] = ()) -> None:
    ds = ctx.fixtures.copy(ctx.fixtures.dataset(4), ctx.dir / "ds")
    cfg = ctx.dir / "cfg.yaml"
    write_bytes(cfg, text.replace("DATASET", str(ds)).encode() if isinstance(text, str) else text)
    ctx.inputs(ds, cfg)
    out = ctx.dir / "run"
    proc = ctx.cli("train", "--config", cfg, *overrides, "--output", out, "--threads", "1", timeout=90)
    last = proc.err.strip().splitlines()[-1] if proc.err.strip() else ""
    for w in words:
        ctx.check(w in last, f"the error does not name '{w}': {shown(last)[:200]}")
    ctx.check(not out.exists(), "the refused run made its output folder")


def _yaml(ds_key: str = "DATASET", **sections: dict[str, Any]) -> str:
    import yaml

    cfg: dict[str, Any] = {"model": {"arch": "litepose-xs", "input_size": 64}, "data": {"train": ds_key},
                           "train": {"epochs": 1, "batch_size": 2}, "val": {"every": 0}}  # fmt: skip
    for k, v in sections.items():
        cfg.setdefault(k, {}).update(v)
    return yaml.safe_dump(cfg)


@case("train: negative train.grad_clip", "train config", 2)
def _(ctx: Ctx) -> None:
    _bad_config(ctx, _yaml(train={"grad_clip": -1.0}), words=("grad_clip",))


@case("train: negative train.warmup_steps (override)", "train config", 2)
def _(ctx: Ctx) -> None:
    _bad_config(ctx, _yaml(), "train.warmup_steps=-5", words=("warmup_steps",))


@case("train: negative data.workers", "train config", 2)
def _(ctx: Ctx) -> None:
    _bad_config(ctx, _yaml(data={"workers": -1}), words=("workers",))


@case("train: negative data.cache_mb", "train config", 2)
def _(ctx: Ctx) -> None:
    _bad_config(ctx, _yaml(data={"cache_mb": -10}), words=("cache_mb",))


@case("train: unknown key (train.learning_rate)", "train config", 2)
def _(ctx: Ctx) -> None:
    _bad_config(ctx, _yaml(train={"learning_rate": 0.1}), words=("learning_rate",))


@case("train: wrong type (train.epochs: 'ten')", "train config", 2)
def _(ctx: Ctx) -> None:
    _bad_config(ctx, _yaml(train={"epochs": "ten"}), words=("epochs",))


@case("train: NaN learning rate", "train config", 2)
def _(ctx: Ctx) -> None:
    _bad_config(ctx, _yaml().replace("batch_size: 2", "batch_size: 2\n  lr: .nan"), words=("lr",))


@case("train: YAML syntax error", "train config", 2)
def _(ctx: Ctx) -> None:
    _bad_config(ctx, "train:\n  lr: [1, 2\n  epochs: 3\n")


@case("train: YAML nested 100000 levels deep", "train config", 2)
def _(ctx: Ctx) -> None:
    _bad_config(ctx, "train:\n  lr_steps: " + "[" * 100_000 + "]" * 100_000 + "\n")


@case("train: JSON config nested 100000 levels deep", "train config", 2)
def _(ctx: Ctx) -> None:
    _bad_config(ctx, '{"train": ' + '{"a": ' * 100_000 + "1" + "}" * 100_000 + "}")


@case("train: YAML alias bomb (billion laughs) in lr_steps", "train config", 2)
def _(ctx: Ctx) -> None:
    # 10^7 integers once expanded (kept moderate: a message that shows the value would hold them all)
    levels = ["&a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for i in range(1, 7):
        levels.append(f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    _bad_config(ctx, _yaml() + "  lr_steps: [" + ", ".join(reversed(levels)) + "]\n", words=("lr_steps",))
    if ctx.main is not None:
        ctx.note(f"stdout {len(ctx.main.out)} chars, stderr {len(ctx.main.err)} chars")


@case("train: config of binary garbage", "train config", 2)
def _(ctx: Ctx) -> None:
    _bad_config(ctx, os.urandom(2000))


@case("train: override without '=' and an unknown section", "train config", 2)
def _(ctx: Ctx) -> None:
    _bad_config(ctx, _yaml(), "train.epochs", "nosuch.key=1")


# -- val: bad ground truth and results ------------------------------------------------------------


def _val_results(ctx: Ctx, text: str | bytes, *, words: tuple[str, ...] = ()) -> Proc:
    ds = ctx.fixtures.copy(ctx.fixtures.dataset(3), ctx.dir / "ds")
    res = write_bytes(ctx.dir / "res.json", text.encode() if isinstance(text, str) else text)
    ctx.inputs(ds, res)
    out = ctx.dir / "out"
    proc = ctx.cli("val", "--data", ds, "--results", res, "--output", out, timeout=90)
    for w in words:
        ctx.check(w in proc.err, f"the error does not say '{w}'")
    ctx.outputs(out)
    return proc


@case("val: results file is not JSON", "val", 2)
def _(ctx: Ctx) -> None:
    _val_results(ctx, "image_id,score\n1,0.5\n")


@case("val: results nested [[[[...]]]] 100000 levels", "val", 2)
def _(ctx: Ctx) -> None:
    _val_results(ctx, "[" * 100_000 + "]" * 100_000)


@case("val: results of wrong types (string ids, string keypoints, null score)", "val", 2)
def _(ctx: Ctx) -> None:
    _val_results(ctx, json.dumps([{"image_id": [1], "keypoints": "0 0 1", "score": None, "category_id": 1}]))


@case("val: results for image ids the ground truth does not have", "val", 2)
def _(ctx: Ctx) -> None:
    _val_results(ctx, json.dumps([{"image_id": 987654, "category_id": 1, "keypoints": [0.0] * 51, "score": 0.9}]))


@case("val: results with NaN keypoints", "val", 2)
def _(ctx: Ctx) -> None:
    ds = ctx.fixtures.dataset(3)
    iid = json.loads((ds / "annotations.json").read_text())["images"][0]["id"]
    _val_results(ctx, f'[{{"image_id": {iid}, "category_id": 1, "keypoints": [NaN{", 1" * 50}], "score": 0.5}}]')


@case("val: empty results list (AP 0, not an error)", "val", 0)
def _(ctx: Ctx) -> None:
    _val_results(ctx, "[]")
    ctx.outputs(ctx.dir / "out", "metrics.json")


@case("val: ground truth whose images are missing (checked before inference)", "val", 2)
def _(ctx: Ctx) -> None:
    ds = ctx.fixtures.copy(ctx.fixtures.dataset(3), ctx.dir / "ds")
    victim = sorted((ds / "images").glob("*.jpg"))[1]
    victim.unlink()
    ctx.inputs(ds)
    out = ctx.dir / "out"
    proc = ctx.cli("val", "--data", ds, *FAST, "--output", out)
    ctx.check(victim.name in proc.err, "the error does not name the missing image")
    ctx.check(not (out / "results.json").exists(), "results.json was written before the images were checked")


@case("val: ground truth whose 'images' is not a list", "val", 2)
def _(ctx: Ctx) -> None:
    gt = write_bytes(ctx.dir / "gt.json", json.dumps({"images": {"1": "a.jpg"}, "annotations": [],
                                                       "categories": []}).encode())  # fmt: skip
    ctx.inputs(gt)
    ctx.cli("val", "--data", gt, "--gt-as-results")


# -- checkpoints and weights ----------------------------------------------------------------------


def _bad_weights(ctx: Ctx, name: str, make: Callable[[Path], Any] | None, *, weights: str | None = None) -> Proc:
    img = image(ctx.dir / "in" / "a.jpg")
    ctx.inputs(img)
    w: Any = weights
    if make is not None:
        w = ctx.dir / name
        make(w)
        ctx.inputs(w)
    out = ctx.dir / "out"
    proc = ctx.cli("predict", img, "--weights", w, "--input-size", "64", "--no-flip", "--threads", "1",
                   "--output", out, timeout=90)  # fmt: skip
    ctx.check(not (out / "a.jpg").exists(), "an overlay was drawn with weights that should have been refused")
    return proc


@case("checkpoint: empty file", "checkpoints", 2)
def _(ctx: Ctx) -> None:
    _bad_weights(ctx, "empty.pth", lambda p: write_bytes(p, b""))


@case("checkpoint: random bytes", "checkpoints", 2)
def _(ctx: Ctx) -> None:
    _bad_weights(ctx, "noise.pth", lambda p: write_bytes(p, os.urandom(4096)))


@case("checkpoint: a pickle that runs code when loaded", "checkpoints", 2)
def _(ctx: Ctx) -> None:
    import torch

    marker = ctx.dir / "PWNED"

    class Evil:
        def __reduce__(self) -> tuple:
            return (os.system, (f"touch '{marker}'",))

    _bad_weights(ctx, "evil.pth", lambda p: torch.save({"state_dict": Evil()}, p))
    ctx.check(not marker.exists(), "THE CHECKPOINT RAN CODE (the marker file exists)")


@case("checkpoint: truncated .pth", "checkpoints", 2)
def _(ctx: Ctx) -> None:
    data = ctx.fixtures.checkpoint().read_bytes()
    _bad_weights(ctx, "cut.pth", lambda p: write_bytes(p, data[: len(data) // 2]))


@case("checkpoint: JSON renamed .pth", "checkpoints", 2)
def _(ctx: Ctx) -> None:
    _bad_weights(ctx, "model.pth", lambda p: write_bytes(p, b'{"state_dict": {"conv.weight": [1, 2]}}'))


@case("checkpoint: a torch file of another network", "checkpoints", 2)
def _(ctx: Ctx) -> None:
    import torch

    _bad_weights(ctx, "other.pth", lambda p: torch.save({"state_dict": {"fc.weight": torch.zeros(10, 4)}}, p))


@case("weights: unknown weights name", "checkpoints", 2)
def _(ctx: Ctx) -> None:
    _bad_weights(ctx, "", None, weights="litepose-xxl-coco")


@case("weights: a known name with no network and an empty cache", "checkpoints", 2)
def _(ctx: Ctx) -> None:
    _bad_weights(ctx, "", None, weights="litepose-xs-coco")


# -- architecture JSON (profile) ------------------------------------------------------------------


def _arch(ctx: Ctx, change: Callable[[dict], Any] | None, raw: str | None = None) -> None:
    from litepose.models.spec import PRESETS

    arch = PRESETS["litepose-xs"].to_json()
    if change is not None:
        change(arch)
    p = write_bytes(ctx.dir / "arch.json", (raw if raw is not None else json.dumps(arch)).encode())
    ctx.inputs(p)
    ctx.cli("profile", p, "--input-size", "64", timeout=60)


@case("arch: a width of 0", "architecture", 2)
def _(ctx: Ctx) -> None:
    _arch(ctx, lambda a: a["backbone_setting"][1].update(channel=0))


@case("arch: a negative deconv width", "architecture", 2)
def _(ctx: Ctx) -> None:
    _arch(ctx, lambda a: a["deconv_setting"].__setitem__(0, -24))


@case("arch: a width of 10^9 (must not try to allocate it)", "architecture", 2)
def _(ctx: Ctx) -> None:
    _arch(ctx, lambda a: a.update(input_channel=10**9))


@case("arch: a list instead of an object", "architecture", 2)
def _(ctx: Ctx) -> None:
    _arch(ctx, None, raw="[16, 32, 48]")


@case("profile: --input-size 1048576 (a multiple of 16: counted, never allocated)", "architecture", 0)
def _(ctx: Ctx) -> None:
    proc = ctx.cli("profile", "litepose-xs", "--input-size", "1048576", timeout=60)
    ctx.check(proc.seconds < 30, f"took {proc.seconds:.0f} s")


@case("profile: --input-size 1048584 (not a multiple of 16)", "architecture", 2)
def _(ctx: Ctx) -> None:
    ctx.cli("profile", "litepose-xs", "--input-size", "1048584", timeout=60)


# -- synth, demo, export, benchmark ---------------------------------------------------------------


@case("synth: onto an existing dataset without --overwrite", "synth", 2)
def _(ctx: Ctx) -> None:
    ds = ctx.fixtures.copy(ctx.fixtures.dataset(3), ctx.dir / "ds")
    ctx.inputs(ds)
    proc = ctx.cli("synth", "--num-images", "2", "--size", "64x48", "--seed", "3", "--output", ds)
    ctx.check("--overwrite" in proc.err, "the refusal does not mention --overwrite")


@case("synth: --num-images 0", "synth", 2)
def _(ctx: Ctx) -> None:
    ctx.cli("synth", "--num-images", "0", "--output", ctx.dir / "ds")
    ctx.check(not (ctx.dir / "ds").exists(), "an output folder was made")


@case("synth: --size 99999x99999", "synth", 2)
def _(ctx: Ctx) -> None:
    ctx.cli("synth", "--num-images", "1", "--size", "99999x99999", "--output", ctx.dir / "ds", timeout=60)
    ctx.check(not (ctx.dir / "ds").exists(), "an output folder was made")


@case("demo: --minutes -1", "demo", 2)
def _(ctx: Ctx) -> None:
    ctx.cli("demo", "--quick", "--minutes", "-1", "--output", ctx.dir / "demo")
    ctx.check(not (ctx.dir / "demo").exists(), "an output folder was made")


@case("demo: --minutes inf", "demo", 2)
def _(ctx: Ctx) -> None:
    ctx.cli("demo", "--quick", "--minutes", "inf", "--output", ctx.dir / "demo")
    ctx.check(not (ctx.dir / "demo").exists(), "an output folder was made")


@case("export: --model only, no --weights", "export/benchmark", 2)
def _(ctx: Ctx) -> None:
    ctx.cli("export", "--model", "litepose-xs", "--output", ctx.dir / "x.onnx")
    ctx.check(not (ctx.dir / "x.onnx").exists(), "a file was written")


@case("export: --output under a regular file (ENOTDIR)", "export/benchmark", 2)
def _(ctx: Ctx) -> None:
    ck = ctx.fixtures.copy(ctx.fixtures.checkpoint(), ctx.dir / "model.pth")
    ctx.inputs(ck)
    ctx.cli("export", "--weights", ck, "--format", "torchscript", "--output", ck / "x.torchscript")


@case("benchmark: --runs 0", "export/benchmark", 2)
def _(ctx: Ctx) -> None:
    ctx.cli("benchmark", *FAST, "--runs", "0", timeout=90)


@case("benchmark: --image is a text file", "export/benchmark", 2)
def _(ctx: Ctx) -> None:
    txt = write_bytes(ctx.dir / "photo.jpg", b"not an image")
    ctx.inputs(txt)
    ctx.cli("benchmark", *FAST, "--image", txt, "--runs", "1", "--warmup", "0", timeout=90)


# -- option values --------------------------------------------------------------------------------


def _bad_option(ctx: Ctx, *opts: str, fast: tuple[str, ...] = tuple(FAST)) -> None:
    img = image(ctx.dir / "in" / "a.jpg")
    ctx.inputs(img)
    ctx.cli("predict", img, *fast, *opts, "--output", ctx.dir / "out", timeout=90)
    ctx.check(not (ctx.dir / "out" / "a.jpg").exists(), "an overlay was drawn despite the bad option")


@case("option: --threads 0", "options", 2)
def _(ctx: Ctx) -> None:
    _bad_option(ctx, "--threads", "0")


@case("option: --threshold nan", "options", 2)
def _(ctx: Ctx) -> None:
    _bad_option(ctx, "--threshold", "nan")


@case("option: --input-size 50 (not a multiple of 16)", "options", 2)
def _(ctx: Ctx) -> None:
    _bad_option(ctx, "--model", "litepose-xs", "--input-size", "50", fast=("--no-flip", "--threads", "1"))


@case("option: --scales 1,nan", "options", 2)
def _(ctx: Ctx) -> None:
    _bad_option(ctx, "--scales", "1,nan")


@case("option: --track --min-similarity nan", "options", 2)
def _(ctx: Ctx) -> None:
    _bad_option(ctx, "--track", "--min-similarity", "nan")


@case("option: --device cuda on a machine without CUDA", "options", 2)
def _(ctx: Ctx) -> None:
    import torch

    if torch.cuda.is_available():
        raise Skip("this machine has CUDA")
    _bad_option(ctx, "--device", "cuda")


@case("option: --keypoints points to a broken YAML", "options", 2)
def _(ctx: Ctx) -> None:
    kp = write_bytes(ctx.dir / "kp.yaml", b"names: [nose, eye\nflip: {")
    ctx.inputs(kp)
    _bad_option(ctx, "--keypoints", str(kp))


# -- a full disk (RLIMIT_FSIZE: a write past the limit fails with EFBIG) ---------------------------


@case("disk full: predict's overlays cannot be written", "full disk", 2)
def _(ctx: Ctx) -> None:
    d = ctx.dir / "in"
    for i in range(3):
        image(d / f"{i}.jpg", 192, 256, seed=i)
    ctx.inputs(d)
    out = ctx.dir / "out"
    proc = ctx.cli("predict", d, *FAST, "--save-json", "--output", out, preexec=_file_size_limit(16_000))
    ctx.check("too large" in proc.err.lower() or "space" in proc.err.lower(), "the error does not say why")
    ctx.outputs(out)


@case("disk full: synth cannot write its images", "full disk", 2)
def _(ctx: Ctx) -> None:
    out = ctx.dir / "ds"
    ctx.cli("synth", "--num-images", "3", "--size", "640x480", "--output", out, preexec=_file_size_limit(8_000))
    ctx.outputs(out)


@case("disk full: val cannot write metrics.json", "full disk", 2)
def _(ctx: Ctx) -> None:
    ds = ctx.fixtures.copy(ctx.fixtures.dataset(3), ctx.dir / "ds")
    ctx.inputs(ds)
    out = ctx.dir / "out"
    ctx.cli("val", "--data", ds, "--gt-as-results", "--output", out, preexec=_file_size_limit(250))
    ctx.outputs(out)


@case("disk full: export cannot write the network", "full disk", 2)
def _(ctx: Ctx) -> None:
    ck = ctx.fixtures.copy(ctx.fixtures.checkpoint(), ctx.dir / "model.pth")
    ctx.inputs(ck)
    out = ctx.dir / "out" / "model.torchscript"
    out.parent.mkdir()
    ctx.cli("export", "--weights", ck, "--format", "torchscript", "--output", out, preexec=_file_size_limit(65_536))
    ctx.check(not out.exists(), "a partial network was left under the output name")


# == running them =================================================================================


def run_case(c: Case, root: Path, fixtures: Fixtures, timeout: float) -> dict[str, Any]:
    t0 = time.monotonic()
    ctx = Ctx(c, root, fixtures, timeout)
    verdict = "PASS"
    try:
        c.fn(ctx)
        ctx.finish()
    except Skip as e:
        verdict = "SKIP"
        ctx.notes.append(str(e))
    except Exception as e:
        ctx.fail(f"the case itself failed: {type(e).__name__}: {shown(e)[:300]} "
                 f"({traceback.extract_tb(e.__traceback__)[-1].lineno})")  # fmt: skip
    if ctx.problems:
        verdict = "FAIL"
    p = ctx.main
    return {
        "case": c.name,
        "category": c.category,
        "expected": list(c.expect),
        "got": p.rc if p is not None else None,
        "seconds": round(time.monotonic() - t0, 1),
        "verdict": verdict,
        "reasons": ctx.problems,
        "notes": ctx.notes,
        "command": [shown(a) for a in p.argv[3:]] if p is not None else None,
        "stderr_tail": p.tail(6) if p is not None else "",
    }


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def report(results: list[dict[str, Any]], wall: float) -> str:
    lines = ["| # | case | category | expected | got | s | verdict |", "|---|---|---|---|---|---|---|"]
    for i, r in enumerate(results, 1):
        verdict = r["verdict"]
        if r["verdict"] == "FAIL":
            verdict += ": " + "; ".join(r["reasons"])[:300]
        elif r["notes"]:
            verdict += " (" + "; ".join(r["notes"])[:200] + ")"
        expected = " or ".join(str(e) for e in r["expected"])
        got = "-" if r["got"] is None else str(r["got"])
        lines.append(f"| {i} | {_cell(r['case'])} | {r['category']} | {expected} | {got} | {r['seconds']} | "
                     f"{_cell(verdict)} |")  # fmt: skip
    counts = {v: sum(r["verdict"] == v for r in results) for v in ("PASS", "FAIL", "SKIP")}
    lines.append("")
    lines.append(
        f"**{len(results)} cases: {counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped** "
        f"({wall / 60:.1f} min)"
    )
    failed = [r for r in results if r["verdict"] == "FAIL"]
    if failed:
        lines += ["", "## Failures", ""]
        for r in failed:
            lines.append(f"### {r['case']}")
            lines.append("")
            if r["command"]:
                lines.append("command: `litepose " + _clip(" ".join(r["command"]), 600) + "`")
                lines.append("")
            for reason in r["reasons"]:
                lines.append(f"- {reason}")
            if r["stderr_tail"]:
                lines += ["", "```", r["stderr_tail"], "```"]
            lines.append("")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--only", action="append", default=[], metavar="SUBSTR",
                    help="run the cases whose name or category holds SUBSTR (repeatable)")  # fmt: skip
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (its path is printed)")
    ap.add_argument("--list", action="store_true", help="list the cases and stop")
    ap.add_argument("--timeout", type=float, default=TIMEOUT, help=f"seconds per litepose run (default {TIMEOUT:.0f})")
    args = ap.parse_args()
    chosen = [
        c for c in CASES
        if not args.only or any(s.lower() in c.name.lower() or s.lower() in c.category.lower() for s in args.only)
    ]  # fmt: skip
    if args.list:
        for c in chosen:
            print(f"{c.category:16} {c.name}  (exit {' or '.join(map(str, c.expect))})")
        return 0
    if not chosen:
        print(f"no case matches {args.only}", file=sys.stderr)
        return 2
    sys.path.insert(0, str(REPO))
    root = Path(tempfile.mkdtemp(prefix="litepose-hostile-"))
    print(f"{len(chosen)} cases in {root}", file=sys.stderr)
    fixtures = Fixtures(root / "fixtures")
    results = []
    t0 = time.monotonic()
    try:
        for i, c in enumerate(chosen, 1):
            r = run_case(c, root, fixtures, args.timeout)
            results.append(r)
            print(f"[{i}/{len(chosen)}] {r['verdict']:4} {r['seconds']:6.1f}s  {c.name}"
                  + (f"  <- {'; '.join(r['reasons'])[:200]}" if r["reasons"] else ""), file=sys.stderr)  # fmt: skip
    finally:
        if args.keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(report(results, time.monotonic() - t0))
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "python": sys.version.split()[0]}, indent=1))
    return 0 if all(r["verdict"] != "FAIL" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
