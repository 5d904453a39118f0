"""Writing files so that an interruption never leaves a half file: the one place for it.

:func:`atomic_write` writes into a temporary file beside the target, named
``.<name>.<random>.tmp``, then renames it over the target (``os.replace``): a reader sees the old
file or the new one, never a mix, and a run killed while writing leaves the previous file intact.
The temporary file is created like any other output (mode ``0o666`` less the umask), so the
result has the folder's normal permissions, and it is removed when the write fails. Only a
process killed outright (``kill -9``, power loss) can leave one behind:
:func:`remove_stale_temps` clears those of given names when a run starts again.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Callable, Iterable
from pathlib import Path

from .errors import one_line

__all__ = [
    "FolderBusy", "FolderLock", "atomic_write", "clashes", "refuse_clashes", "remove_stale_temps", "sha256",
    "shown", "temp_pattern",
]


def shown(path: str | Path) -> str:
    """``path`` as printable text: bytes that are not valid UTF-8 (which Python keeps as lone
    surrogates) as ``\\xNN`` escapes, so that printing a name never fails."""
    text = os.fsdecode(path) if isinstance(path, bytes) else str(path)
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def temp_pattern(name: str) -> str:
    """The glob pattern of :func:`atomic_write`'s temporary files for a target named ``name``."""
    return f".{name}.*.tmp"


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` to fill a temporary file ``tmp`` beside ``path`` (created empty, with the
    normal permissions), then rename it to ``path``; returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / _temp_name(path.name)
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # the umask applies, as to any output
    except OSError as e:
        raise OSError(e.errno, e.strerror or str(e), str(path)) from None
    try:
        write(tmp)  # opening it again for writing keeps its mode
        os.replace(tmp, path)
    except OSError as e:  # a full disk, no permission, a read-only file system: name the target, not tmp
        tmp.unlink(missing_ok=True)
        raise OSError(e.errno, e.strerror or str(e), str(path)) from None
    except RuntimeError as e:  # torch.save and onnx.save report a failed write as a RuntimeError
        tmp.unlink(missing_ok=True)
        if "write" not in str(e).lower():
            raise
        raise OSError(errno.EIO, f"the write failed, is the disk full? ({one_line(str(e), 200)})", str(path)) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def sha256(path: str | Path) -> str:
    """The hex sha256 of the file ``path``, read in blocks (downloads verified, exports keyed)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _temp_name(name: str) -> str:
    """``.<name>.<random>.tmp``, or ``.litepose-<random>.tmp`` when that would pass the file
    systems' 255-byte limit on a name (a legal 255-byte target must still be writable)."""
    tmp = f".{name}.{secrets.token_hex(6)}.tmp"
    return tmp if len(os.fsencode(tmp)) <= 255 else f".litepose-{secrets.token_hex(6)}.tmp"


def remove_stale_temps(folder: str | Path, names: Iterable[str]) -> list[Path]:
    """Delete the temporary files that interrupted :func:`atomic_write` calls for ``names`` left in
    ``folder``; returns what was removed. Call it only where no other process writes those files."""
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for name in names:
        for tmp in sorted(folder.glob(temp_pattern(name))):
            if tmp.is_file():
                tmp.unlink(missing_ok=True)
                removed.append(tmp)
    return removed


# -- one run per output folder ---------------------------------------------------------------------

LOCK_NAME = ".litepose.lock"


class FolderBusy(ValueError):
    """Another live run holds the output folder."""


class FolderLock:
    """An output folder owned by one run at a time: ``FOLDER/.litepose.lock``, which names its
    holder (pid, host, command, start time).

    On POSIX the ownership is an ``flock`` on that file, which the kernel drops when the holder's
    process ends however it ends (``kill -9`` included), so a lock left by a dead run is never in
    the way: the next run takes it over and says whose it was. Elsewhere the file's existence is the
    lock and a holder whose pid is no longer alive is taken over. Use it as a context manager, or
    :meth:`acquire` and :meth:`release`.
    """

    def __init__(self, folder: str | Path, what: str = "run") -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.what = what
        self._fd: int | None = None
        self.took_over: dict | None = None  # the dead holder's record, when there was one

    def acquire(self) -> FolderLock:
        """Own the folder (made when missing), or raise :class:`FolderBusy` naming the holder."""
        import json
        import socket
        import sys
        import time

        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            fcntl = None
        while True:
            # never through a symlink (a planted .litepose.lock -> a user's photo would be overwritten)
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.EMLINK) or self.path.is_symlink():
                    raise FolderBusy(
                        f"{shown(self.path)}: is a symbolic link, not litepose's lock file; remove it (it may point "
                        "at a file of yours, which litepose will not write)"
                    ) from None
                raise
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                raise FolderBusy(f"{shown(self.path)}: is not a regular file, so not litepose's lock file; remove it")
            try:
                if fcntl is not None:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        raise FolderBusy(self._busy(_read_record(fd))) from None
                    if os.fstat(fd).st_ino != _inode(self.path):  # the holder removed it as we opened it
                        os.close(fd)
                        continue
                    old = _read_record(fd)
                else:  # pragma: no cover - Windows
                    old = _read_record(fd)
                    if old and _alive(old):
                        raise FolderBusy(self._busy(old))
            except BaseException:
                if fd is not None:
                    with contextlib.suppress(OSError):
                        os.close(fd)
                raise
            break
        if old and old.get("pid") != os.getpid():
            self.took_over = old
            print(
                f"notice: {self.folder}: took over the lock of an earlier {old.get('command', 'run')} "
                f"(pid {old.get('pid')}, started {old.get('started', '?')}), which is no longer running",
                file=sys.stderr,
            )
        record = {
            "pid": os.getpid(), "host": socket.gethostname(), "command": self.what,
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        }  # fmt: skip
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
        self._fd = fd
        return self

    def _busy(self, holder: dict | None) -> str:
        who = (
            f"{holder.get('command', 'a run')} (pid {holder.get('pid')} on {holder.get('host', '?')}, "
            f"started {holder.get('started', '?')})"
            if holder
            else "another run"
        )
        return (
            f"{self.folder}: this output folder is in use by {who}; wait for it to end or choose another --output"
        )

    def release(self) -> None:
        """Give the folder up (removes the lock file)."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            if os.fstat(self._fd).st_ino == _inode(self.path):
                self.path.unlink()
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._fd = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _inode(path: Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def _read_record(fd: int) -> dict | None:
    import json

    try:
        data = os.pread(fd, 4096, 0)
        record = json.loads(data.decode("utf-8", "replace")) if data.strip() else None
    except (OSError, ValueError, RecursionError):
        return None
    return record if isinstance(record, dict) else None


def _alive(record: dict) -> bool:  # pragma: no cover - Windows only
    import socket

    if record.get("host") != socket.gethostname():
        return True  # another machine's process: assume alive
    try:
        os.kill(int(record.get("pid", -1)), 0)
    except ProcessLookupError:
        return False
    except (OSError, ValueError, TypeError):
        return True
    return True


def clashes(outputs: Iterable[str | Path], inputs: Iterable[str | Path]) -> list[tuple[Path, Path]]:
    """The ``(output, input)`` pairs where an output path is an input file (both resolved, symlinks
    followed; a hard link to an input counts too): what a command must refuse before writing."""
    def key(p: Path) -> tuple:
        try:
            st = os.stat(p)
            return ("inode", st.st_dev, st.st_ino)
        except OSError:
            return ("path", os.path.realpath(p))

    given: dict[tuple, Path] = {}
    for p in inputs:
        p = Path(p)
        given.setdefault(key(p), p)
        given.setdefault(("path", os.path.realpath(p)), p)
    found = []
    for out in outputs:
        out = Path(out)
        hit = given.get(key(out)) or given.get(("path", os.path.realpath(out)))
        if hit is not None:
            found.append((out, hit))
    return found


def refuse_clashes(outputs: Iterable[str | Path], inputs: Iterable[str | Path], what: str = "output") -> None:
    """Raise a ValueError (before any work is done) when an output would replace an input
    (:func:`clashes`), naming the first such pair and the count of the others."""
    found = clashes(outputs, inputs)
    if found:
        out, given = found[0]
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise ValueError(
            f"{what} {shown(out.parent)}: writing {shown(out.name)} there would replace the input "
            f"{shown(given)}{more}; choose an output folder that holds no input"
        )
