"""Writing user files safely: never replace one without being asked, never leave half of one."""
from __future__ import annotations

import os
import secrets
import stat


def check_writable(path: str | os.PathLike, overwrite: bool, who: str) -> str:
    """The path as a str; FileExistsError if it exists and `overwrite` is False."""
    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{who}: {path} already exists; pass overwrite=True to replace it")
    return path


def write_atomic(path: str, data: bytes) -> None:
    """Write to a temporary file beside `path`, flush it to disk, then rename it over `path`.

    A new file gets the mode the umask gives (0644 under 022), as `open()` would make it;
    a replaced file keeps its mode.
    """
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        mode = None
    fd, tmp = _create_beside(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _create_beside(path: str) -> tuple[int, str]:
    """A new, empty file in `path`'s folder, made with mode 0666 so the umask applies
    (tempfile.mkstemp would make it 0600 whatever the umask)."""
    folder = os.path.dirname(os.path.abspath(path))
    for _ in range(100):
        tmp = os.path.join(folder, f".tmp-{secrets.token_hex(8)}")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file in {folder}")
