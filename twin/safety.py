r"""Input that cannot be trusted: bounded text in messages, printable text, paths that stay inside.

Every value that reaches a message, a terminal or a file path from outside (a file's header, a
scenario's name, a tag) passes through one of these:

- `shorten` bounds a value's text, so a megabyte-long cell does not become a megabyte-long error;
- `clip` bounds the text of another error (a parser's message may quote its input) kept in ours;
- `printable` replaces control characters (terminal escape sequences, carriage returns, NUL) with
  visible escapes, so a file's bytes cannot clear the screen or forge output lines;
- `child_path` joins a folder and a name taken from input and refuses a result outside the folder
  (`../`, absolute paths, links out of it).

`replace_text` writes a file through a temporary file and a rename, so neither a reader nor a
crash ever sees half of it; `file_lock` holds an exclusive lock on a file for writers of another
process or thread, waited for up to a timeout.

Example:
    >>> shorten("x" * 500, limit=12)
    "'xxxxxxxx...' (500 chars)"
    >>> printable(chr(27) + "[2J")
    '\\x1b[2J'
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from pumptwin.twin.errors import PumptwinError

MESSAGE_LIMIT = 80
"""Characters of an input value shown in a message."""

TEXT_LIMIT = 200
"""Characters of another error's text (a library's message, which may quote input) kept in ours."""

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


class UnsafePathError(PumptwinError, ValueError):
    """A path built from input would leave its folder; the message names the input."""


def printable(text: str) -> str:
    """Return `text` with control characters written as visible escapes (ESC as backslash-x1b).

    Tabs and line feeds stay; everything a terminal would act on (escape sequences, carriage
    returns, bidirectional overrides) is shown, not executed.

    Args:
        text: Text from input.

    Returns:
        The text, safe to print.
    """
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def shorten(value: object, limit: int = MESSAGE_LIMIT) -> str:
    """Return a value's repr for a message: printable and at most about `limit` characters.

    Args:
        value: Any value taken from input.
        limit: Characters of the value kept; longer values end in ``...`` and their length.

    Returns:
        The value's repr (strings quoted), bounded and printable.
    """
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= limit:
        shown = repr(text) if isinstance(value, str) else text
        return printable(shown)
    head = text[: max(limit - 4, 1)]
    shown = repr(head + "...") if isinstance(value, str) else head + "..."
    return printable(f"{shown} ({len(text)} chars)")


def clip(text: str, limit: int = TEXT_LIMIT) -> str:
    """Return message text (not a repr) cut to `limit` characters, ending in ``...`` when cut, and printable.

    Args:
        text: An error's text, e.g. ``str(exc)`` of a library's exception.
        limit: Characters kept, ``...`` included.

    Returns:
        The text, bounded and safe to print.
    """
    return printable(text if len(text) <= limit else text[: max(limit - 3, 0)] + "...")


def child_path(folder: str | Path, name: str, *, what: str = "name") -> Path:
    """Join `folder` and a name from input; refuse a result that is not inside `folder`.

    The name may hold subfolders (``a/b.parquet``) but no ``..`` that climbs out, no absolute path,
    no NUL, and no symbolic link that resolves outside `folder`.

    Args:
        folder: The folder the path must stay in.
        name: A relative name taken from input (a scenario's name, a file name).
        what: What the name is, for the message.

    Returns:
        `folder / name`, unresolved (links inside the folder are kept as given).

    Raises:
        UnsafePathError: When the name is empty, absolute, holds NUL, leads outside `folder` or
            names `folder` itself (``.``, ``a/..``).
    """
    if not name or "\x00" in name or os.path.isabs(name) or Path(name).is_absolute():
        raise UnsafePathError(f"{what} {shorten(name)} is not a relative name inside {folder}")
    base = Path(folder)
    candidate = base / name
    root = base.resolve()
    resolved = candidate.resolve()
    if resolved == root:
        raise UnsafePathError(f"{what} {shorten(name)} names the folder {folder} itself, not a path inside it")
    if root not in resolved.parents:
        raise UnsafePathError(f"{what} {shorten(name)} leads outside {folder}")
    return candidate


def inside(folder: str | Path, path: str | Path) -> bool:
    """True when `path`, with every link resolved, lies inside `folder` (also resolved).

    Args:
        folder: The folder.
        path: A path, e.g. a file found while walking `folder`.

    Returns:
        Whether the real location of `path` is within the real location of `folder`.
    """
    root = Path(folder).resolve()
    real = Path(path).resolve()
    return real == root or root in real.parents


def replace_text(path: str | Path, text: str) -> None:
    """Write `text` (UTF-8) to `path` through a temporary file beside it and a rename.

    A reader sees the old file or the new one, never half of one; a failure leaves the old file.
    The temporary file is named ``.<name>.<random hex>.tmp``, so writers never share one.

    Args:
        path: The file; an existing one is replaced, missing folders are created.
        text: What to write.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


LOCK_FIRST_WAIT_S = 0.002
"""First wait before trying a held lock again, s (doubled after each try)."""
LOCK_MAX_WAIT_S = 0.05
"""Longest wait between tries of a held lock, s."""


@contextlib.contextmanager
def file_lock(path: str | Path, timeout_s: float, timeout_error: Callable[[], Exception]) -> Iterator[None]:
    """Hold an exclusive ``fcntl.flock`` on ``path`` (created with its folder) for the body of a ``with`` block.

    Args:
        path: The lock file.
        timeout_s: Longest wait for another holder, s.
        timeout_error: Builds the error raised when the lock is still held after ``timeout_s``.

    Raises:
        Exception: ``timeout_error()``, when another process or thread holds the lock longer.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout_s
        delay_s = LOCK_FIRST_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise timeout_error() from None
                time.sleep(delay_s)
                delay_s = min(2 * delay_s, LOCK_MAX_WAIT_S)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
