"""Writing user files safely: never replace one without being asked, never leave half of one."""
from __future__ import annotations

import os
import tempfile


def check_writable(path: str | os.PathLike, overwrite: bool, who: str) -> str:
    """The path as a str; FileExistsError if it exists and `overwrite` is False."""
    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{who}: {path} already exists; pass overwrite=True to replace it")
    return path


def write_atomic(path: str, data: bytes) -> None:
    """Write to a temporary file beside `path`, flush it to disk, then rename it over `path`."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
