"""A failed file write (full disk, read-only folder) said in one line people can act on."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
READ_ONLY = {errno.EROFS, errno.EACCES, errno.EPERM}


def is_full_or_read_only(exc: BaseException) -> bool:
    """A write refused by the file system itself (errno 28, 30, quota): never the program's fault."""
    return isinstance(exc, OSError) and exc.errno in FULL | {errno.EROFS}


def describe_write_error(exc: OSError, path=None) -> str:
    """``cannot write <path> (No space left on device): <what to do>``."""
    where = path if path is not None else (exc.filename2 or exc.filename or "a file")  # a copy's target is filename2
    cause = exc.strerror or str(exc)
    if exc.errno in FULL:
        advice = "that disk is full: free space on it (or write elsewhere) and run the same command again"
    elif exc.errno in READ_ONLY:
        advice = "that folder is read-only for you: choose a folder you can write to"
    elif exc.errno in (errno.ENOTDIR, errno.EEXIST):
        advice = "a file stands where a folder of that path would be: choose another path"
    elif exc.errno == errno.EISDIR:
        advice = "that is a folder: give a file name"
    else:
        advice = "the disk reported an error: check it and run the same command again"
    return f"cannot write {where} ({cause}); {advice}"


def check_writable(folder) -> None:
    """Make ``folder`` (and its parents) and create and remove a file in it: raises the OSError a write there would
    (read-only, no permission), before any work that would write there."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-check-")
    os.close(fd)
    os.unlink(probe)
