"""The one place that writes files: atomically, honouring the umask, with injectable faults.

A reader never sees a half-written file: every file is written to a temporary name beside its
target and renamed onto it in one step; a failed write removes the temporary file and leaves the
target as it was. Files get the permissions the process's umask allows (``0666 & ~umask``, as
``open`` would give), so colleagues on a shared file system can read a run's results.

Faults a test machine cannot produce for real (a full disk, a read-only file system) are injected
here: ``CROSSL_INJECT_FAULT=ERRNO:NAME[,ERRNO:NAME...]`` (e.g. ``ENOSPC:last.ckpt``) makes every
write of a file called NAME fail with that error after half of it is written.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

FAULT_ENV = "CROSSL_INJECT_FAULT"


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def injected_fault(path: Path) -> OSError | None:
    """The error ``CROSSL_INJECT_FAULT`` asks for when writing ``path``, if any."""
    spec = os.environ.get(FAULT_ENV, "")
    for item in filter(None, (s.strip() for s in spec.split(","))):
        code, _, name = item.partition(":")
        number = getattr(errno, code, None)
        if isinstance(number, int) and name == path.name:
            return OSError(number, f"{os.strerror(number)} (injected by {FAULT_ENV})", str(path))
    return None


def write_atomic(path: str | Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp_path)`` then move the finished file onto ``path`` in one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        fault = injected_fault(path)
        if fault is not None:
            size = Path(tmp).stat().st_size
            os.truncate(tmp, size // 2)  # what a full disk leaves behind
            raise fault
        # mkstemp creates 0600 whatever the umask; give the file the mode open() would
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json_atomic(path: str | Path, obj: Any, indent: int | None = 2) -> None:
    """``indent=None`` for files of long index lists, which one line each would blow up."""
    write_text_atomic(path, json.dumps(obj, indent=indent) + "\n")


def describe_os_error(exc: OSError) -> str:
    """One line for an error of the file system: the path, the reason, and what to do."""
    where = exc.filename or "a file"
    reason = exc.strerror or str(exc)
    hints = {
        errno.ENOSPC: "free disk space, then rerun the same command with --resume",
        errno.EDQUOT: "free space in your quota, then rerun the same command with --resume",
        errno.EACCES: "choose a location you may write to (--out, $CROSSL_HOME) or fix its permissions",
        errno.EPERM: "choose a location you may write to (--out, $CROSSL_HOME) or fix its permissions",
        errno.EROFS: "the file system is read-only: choose another location (--out, $CROSSL_HOME)",
        errno.ENOTDIR: "a file stands where a directory is needed: choose another --out or move that file",
        errno.EEXIST: "something already exists there: choose another path",
        errno.ENOENT: "check that the path exists",
    }
    hint = hints.get(exc.errno or -1, "check the path and rerun")
    return f"{where}: {reason}; {hint}"
