"""Writing user files safely: never replace one without being asked, never leave half of one,
and say which of the user's paths an error is about."""
from __future__ import annotations

import errno
import os
import secrets
import stat

from microgradnn._checks import flag


def _user_error(e: OSError, who: str, path: str) -> OSError:
    """The same kind of OSError, about the user's path instead of a temporary file."""
    err = type(e)(f"{who}: cannot write {path}: {e.strerror or e}")
    err.errno = e.errno
    return err


def user_path(path: str | os.PathLike, who: str) -> str:
    """A path the user gave, as a str: a str or an os.PathLike of one (bytes paths are refused)."""
    try:
        text = os.fspath(path)
    except TypeError:
        text = None
    if not isinstance(text, str):
        raise TypeError(f"{who}: path must be a str or os.PathLike, got {type(path).__name__} {path!r:.60}")
    if not text:  # '' would pass the checks against the parent folder, then fail to write after the work
        raise ValueError(f"{who}: path must not be empty, got ''")
    if "\0" in text:  # no file name holds one: open() says "embedded null byte", which load took for bad JSON
        raise ValueError(f"{who}: path must not contain a NUL character (\\0), got {text!r:.80}")
    return text


def extension(path: str, allowed: tuple[str, ...], who: str, advice: str = "") -> str:
    """The path's extension, lowercased, after checking it is one of `allowed` (a folder passes:
    `check_writable` says what is wrong with it)."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in allowed and not os.path.isdir(path):
        raise ValueError(f"{who}: unknown extension {ext or '(none)'!r} in {path}; "
                         f"{advice or 'use one of ' + ', '.join(allowed)}")
    return ext


def check_overwrite(overwrite: bool, who: str) -> None:
    """Refuse an `overwrite` that is not a bool: a truthy non-bool ("no") must not replace the user's file."""
    flag(overwrite, who, "overwrite")


def check_writable(path: str | os.PathLike, overwrite: bool, who: str) -> str:
    """The path as a str, after checking a file can be written there now (so long work does
    not end in an error): not a folder, in a folder that exists and takes new files, and, unless
    `overwrite`, not already there (a dangling symlink is there too)."""
    check_overwrite(overwrite, who)
    path = user_path(path, who)
    if os.path.isdir(path):
        raise IsADirectoryError(f"{who}: {path} is a folder; give a file name")
    if not os.path.basename(path):  # 'out/': the write would fail after the work (or, replacing, write 'out')
        raise ValueError(f"{who}: {path} names a folder (it ends with {path[-1]!r}); give a file name")
    check_regular(path, who)
    if os.path.lexists(path) and not overwrite:
        raise FileExistsError(f"{who}: {path} already exists; pass overwrite=True to replace it")
    folder = os.path.dirname(_target(path, overwrite))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{who}: cannot write {path}: folder {folder} does not exist")
    _check_name_length(path, folder, who)  # (the probe below has a short name of its own)
    try:  # permissions, read-only file systems, quotas: only trying tells
        fd, probe = _create_beside(_target(path, overwrite))
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise _user_error(e, who, path) from None
    return path


def _check_name_length(path: str, folder: str, who: str) -> None:
    """Refuse a file name longer than the folder's file system takes (255 bytes, often), which only
    the write itself would tell, after the work."""
    name = os.fsencode(os.path.basename(path))
    try:
        limit = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):  # no such query here (Windows), or no answer
        return
    if limit > 0 and len(name) > limit:
        shown = path if len(path) <= 80 else f"{path[:60]}... ({len(path)} characters)"
        err = OSError(f"{who}: the file name is {len(name)} bytes long, more than the {limit} its folder's file "
                      f"system takes; give a shorter name, got {shown}")
        err.errno = errno.ENAMETOOLONG  # (the error the write would raise, after the work)
        raise err


def write_atomic(path: str, data: bytes, *, overwrite: bool = True, who: str = "save") -> None:
    """Write to a temporary file beside `path`, flush it to disk, then move it to `path`:
    replacing what is there if `overwrite`, else only if nothing is (so of two racing saves
    one fails). Errors name `path`, and the temporary file never stays behind.

    A new file gets the mode the umask gives (0644 under 022), as `open()` would make it;
    a replaced file keeps its mode. Through a symlink, the file it points to is written.
    """
    check_overwrite(overwrite, who)
    path = user_path(path, who)
    target = _target(path, overwrite)
    check_regular(target, who)
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        mode = None
    try:
        fd, tmp = _create_beside(target)
    except OSError as e:
        raise _user_error(e, who, path) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        if overwrite:
            os.replace(tmp, target)
        else:
            _link_exclusive(tmp, path, who)  # (no symlink is followed here)
    except OSError as e:
        if isinstance(e, FileExistsError) and str(e).startswith(who):
            raise
        raise _user_error(e, who, path) from None
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def check_regular(path: str, who: str) -> None:
    """Refuse a device, pipe or socket at `path`: replacing it with a file would remove it
    (/dev/null itself, for root), a model or picture is not streamed into one, and reading one
    may never end (/dev/zero, a pipe's open() waiting for a writer)."""
    if os.path.exists(path) and not os.path.isfile(path) and not os.path.isdir(path):
        raise ValueError(f"{who}: {path} is not a regular file (a device, pipe or socket); give a file name")


def _target(path: str, overwrite: bool) -> str:
    """The file a write to `path` replaces: a symlink's target, as `open()` writes through one (replacing
    the link would leave the file it points to stale); without `overwrite`, any symlink counts as there.
    Not normalized, as `open()` reads it: 'x/../m.json' needs a folder x (abspath would drop 'x/..')."""
    return os.path.realpath(path) if overwrite and os.path.islink(path) else os.path.join(os.getcwd(), path)


def _create_beside(path: str) -> tuple[int, str]:
    """A new, empty file in `path`'s folder, made with mode 0666 so the umask applies
    (tempfile.mkstemp would make it 0600 whatever the umask)."""
    folder = os.path.dirname(os.path.join(os.getcwd(), path))
    for _ in range(100):
        tmp = os.path.join(folder, f".tmp-{secrets.token_hex(8)}")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file in {folder}")


def _link_exclusive(tmp: str, path: str, who: str) -> None:
    """Give the complete file `tmp` the name `path` only if no file has it (a hard link is
    atomic and fails on any existing name, even a dangling symlink)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise FileExistsError(f"{who}: {path} already exists; pass overwrite=True to replace it") from None
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
            raise
        # no hard links on this file system: create the name exclusively and copy into it
        try:
            out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            raise FileExistsError(f"{who}: {path} already exists; pass overwrite=True to replace it") from None
        try:
            with open(tmp, "rb") as src, os.fdopen(out, "wb") as dst:
                dst.write(src.read())
                dst.flush()
                os.fsync(dst.fileno())
        except BaseException:
            os.unlink(path)
            raise
