"""Guards for untrusted input: bounded message text, printable text, paths that stay inside a folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pumptwin.twin.errors import PumptwinError
from pumptwin.twin.safety import (
    MESSAGE_LIMIT,
    TEXT_LIMIT,
    UnsafePathError,
    child_path,
    clip,
    inside,
    printable,
    replace_text,
    shorten,
)

# --- printable ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("\x1b[2J", "\\x1b[2J"),
        ("a\rb", "a\\rb"),
        ("nul\x00", "nul\\x00"),
        ("del\x7f", "del\\x7f"),
        ("c1\x9b", "c1\\x9b"),
        ("bidi\u202eevil", "bidi\\u202eevil"),
        ("isolate\u2066x", "isolate\\u2066x"),
        ("line\u2028sep", "line\\u2028sep"),
    ],
)
def test_printable_shows_control_characters(text: str, shown: str) -> None:
    assert printable(text) == shown


def test_printable_keeps_ordinary_text_tabs_and_newlines() -> None:
    text = "PS01.P1 café 50 m³/h\tok\nnext"
    assert printable(text) == text


@given(st.text())
def test_printable_output_has_no_control_characters(text: str) -> None:
    out = printable(text)
    assert not any(ord(c) < 0x20 and c not in "\t\n" for c in out)
    assert not any(0x7F <= ord(c) <= 0x9F for c in out)
    assert "\u202e" not in out and "\u2028" not in out


# --- shorten ------------------------------------------------------------------------------------


def test_short_values_are_their_repr() -> None:
    assert shorten("PS01") == "'PS01'"
    assert shorten(12.5) == "12.5"
    assert shorten(None) == "None"
    assert shorten([1, 2]) == "[1, 2]"


def test_long_strings_are_cut_and_give_their_length() -> None:
    assert shorten("x" * 500, limit=12) == "'xxxxxxxx...' (500 chars)"
    out = shorten("x" * 1_000_000)
    assert out.endswith("(1000000 chars)")
    assert len(out) < MESSAGE_LIMIT + 30


def test_long_reprs_are_cut_too() -> None:
    out = shorten(list(range(100_000)))
    assert out.startswith("[0, 1, 2") and out.endswith("chars)")
    assert len(out) < MESSAGE_LIMIT + 30


def test_shorten_never_passes_an_escape() -> None:
    assert "\x1b" not in shorten("\x1b[2J")
    assert "\x1b" not in shorten("\x1b[2J" * 100_000)
    assert "\x1b" not in shorten(["\x1b[2J"])


@given(st.one_of(st.text(), st.binary(), st.integers(), st.lists(st.text())), st.integers(1, 200))
def test_shorten_is_bounded_and_printable(value: object, limit: int) -> None:
    out = shorten(value, limit=limit)
    # every kept character may become an escape of up to 10 characters; the tail is quotes and a count
    assert len(out) <= 10 * limit + 40
    assert not any(ord(c) < 0x20 and c not in "\t\n" for c in out)
    assert "\u202e" not in out


# --- clip ---------------------------------------------------------------------------------------


def test_clip_keeps_short_text_as_it_is() -> None:
    assert clip("could not convert string to float: 'x'") == "could not convert string to float: 'x'"


def test_clip_cuts_long_text_and_shows_escapes() -> None:
    out = clip("could not convert string to float: '" + "\x1b[2J" * 100_000 + "'")
    assert out.startswith("could not convert") and out.endswith("...")
    assert "\x1b" not in out
    assert len(clip("x" * 1_000_000)) == TEXT_LIMIT
    assert clip("abcdef", limit=5) == "ab..."


# --- child_path and inside ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["run.parquet", "a/b.parquet", "x..y", "./plain", "sub/../other"])
def test_child_path_keeps_names_inside(tmp_path: Path, name: str) -> None:
    assert child_path(tmp_path, name) == tmp_path / name


@pytest.mark.parametrize("name", ["../x", "../../tmp/x", "a/../../x", "..", "/etc/passwd", "", "a\x00b"])
def test_child_path_refuses_names_that_leave(tmp_path: Path, name: str) -> None:
    with pytest.raises(UnsafePathError) as info:
        child_path(tmp_path, name, what="scenario name")
    assert "scenario name" in str(info.value)
    assert "\x00" not in str(info.value)


@pytest.mark.parametrize("name", [".", "a/..", "./"])
def test_child_path_refuses_the_folder_itself(tmp_path: Path, name: str) -> None:
    with pytest.raises(UnsafePathError, match="itself"):
        child_path(tmp_path, name)


def test_child_path_error_is_a_pumptwin_value_error(tmp_path: Path) -> None:
    with pytest.raises(PumptwinError):
        child_path(tmp_path, "../x")
    with pytest.raises(ValueError, match="leads outside"):
        child_path(tmp_path, "../x")


def test_child_path_message_is_bounded_and_printable(tmp_path: Path) -> None:
    with pytest.raises(UnsafePathError) as info:
        child_path(tmp_path, "../" + "\x1b[2J" * 100_000)
    assert "\x1b" not in str(info.value)
    assert len(str(info.value)) < 300 + len(str(tmp_path))


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_child_path_refuses_a_link_out_of_the_folder(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "out").symlink_to(outside, target_is_directory=True)
    (root / "in").symlink_to(root / "sub", target_is_directory=True)
    with pytest.raises(UnsafePathError, match="leads outside"):
        child_path(root, "out/x.parquet")
    assert child_path(root, "in/x.parquet") == root / "in" / "x.parquet"


def test_child_path_works_in_a_folder_not_yet_made(tmp_path: Path) -> None:
    folder = tmp_path / "not" / "yet"
    assert child_path(folder, "x.parquet") == folder / "x.parquet"
    with pytest.raises(UnsafePathError):
        child_path(folder, "../../../x")


def test_child_path_of_a_relative_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert child_path("data", "x.parquet") == Path("data") / "x.parquet"
    with pytest.raises(UnsafePathError):
        child_path("data", "../x")


def test_inside(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    assert inside(tmp_path, tmp_path / "a" / "f")
    assert inside(tmp_path, tmp_path)
    assert not inside(tmp_path / "a", tmp_path / "b")
    assert not inside(tmp_path / "a", tmp_path / "a" / ".." / "b")
    assert not inside(tmp_path / "a", tmp_path / "ab")


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_inside_follows_links(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "f").write_text("x")
    (root / "link").symlink_to(outside / "f")
    assert not inside(root, root / "link")


def test_replace_text_replaces_a_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "out.json"
    replace_text(target, "first")
    replace_text(target, "second")
    assert target.read_text(encoding="utf-8") == "second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.json"]


def test_replace_text_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    target = tmp_path / "out.txt"
    replace_text(target, "old")

    def fail(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("pumptwin.twin.safety.os.replace", fail)
    with pytest.raises(OSError, match="disk full"):
        replace_text(target, "new")
    assert target.read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_file_lock_excludes_a_second_holder_until_released(tmp_path: Path) -> None:
    import threading

    from pumptwin.twin.safety import file_lock

    lock = tmp_path / "sub" / ".lock"
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with file_lock(lock, 5.0, lambda: RuntimeError("first holder waited")):
            taken.set()
            release.wait(5.0)

    worker = threading.Thread(target=hold)
    worker.start()
    assert taken.wait(5.0)
    with pytest.raises(TimeoutError, match="still held"), file_lock(lock, 0.05, lambda: TimeoutError("still held")):
        pass
    release.set()
    worker.join()
    with file_lock(lock, 0.05, lambda: TimeoutError("still held")):
        pass
