"""Atomic file writes: a temporary file beside the target, then a rename.

A reader never sees half a file, and a killed writer leaves at most a temporary behind. The
temporary is named `.<target name>.<pid>.<8 hex>.tmp` and created with mode 0666 minus the
process umask, so a written file gets the same permissions as one opened with `open(path, "w")`
(`tempfile.mkstemp` would make it 0600). `stale_temporaries` finds what a killed writer left:
temporaries of processes that are gone, and temporaries of the older `mkstemp` naming
(`.<target name><8 random characters>.tmp`).
"""
from __future__ import annotations

import os
import pathlib
import re
import secrets
from collections.abc import Callable, Iterator

_OURS = re.compile(r"^\.(?P<target>.+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp$")
_MKSTEMP = re.compile(r"^\.?(?P<target>.+)[a-z0-9_]{8}\.tmp$")


def temporary_name(target: str) -> str:
    return f".{target}.{os.getpid()}.{secrets.token_hex(4)}.tmp"


def write(path, writer: Callable[[str], object]) -> pathlib.Path:
    """`writer(tmp)` writes the content to the path it is given; the file then replaces `path`.
    The parent folder is created when missing. Returns `path`."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / temporary_name(path.name)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)   # the umask applies
    os.close(fd)
    try:
        writer(str(tmp))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def write_bytes(path, data: bytes) -> pathlib.Path:
    def writer(tmp):
        with open(tmp, "wb") as f:
            f.write(data)
    return write(path, writer)


def write_text(path, text: str) -> pathlib.Path:
    return write_bytes(path, text.encode("utf-8"))


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return pid < 2 ** 31        # another user's live process (or an impossible pid)
    return True


def parse_temporary(name: str) -> tuple[str, int | None] | None:
    """(target name, writer's pid, or None for the mkstemp naming) of a temporary's file name;
    None when `name` is not one."""
    m = _OURS.match(name)
    if m:
        return m["target"], int(m["pid"])
    m = _MKSTEMP.match(name)
    if m and name.startswith("."):
        return m["target"], None
    return None


def stale_temporaries(folder, owned: Callable[[str], bool]) -> Iterator[pathlib.Path]:
    """Temporaries in `folder` that no running writer will finish: ours of processes that have
    ended, and mkstemp-named ones. `owned(target)` says whether a target name is a file this
    caller writes there (files of other programs are left alone)."""
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        return
    for p in sorted(folder.iterdir()):
        parsed = parse_temporary(p.name) if p.is_file() else None
        if parsed is None:
            continue
        target, pid = parsed
        if pid is not None and _alive(pid):
            continue
        if owned(target):
            yield p
