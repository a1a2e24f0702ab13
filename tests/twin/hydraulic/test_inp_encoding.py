"""Reading .inp files in the encodings EPANET users meet: UTF-8, Windows-1252, Latin-1, UTF-16; binary refused."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pumptwin.flows.cli import app
from pumptwin.twin.hydraulic.inp import decode_inp, read_inp
from pumptwin.twin.hydraulic.network import NetworkError

SOUTH, OTHER = "Pumpe-Süd", "Pumpe-Säd"
"""Two ids that differ only in one non-ASCII letter (ü is 0xFC, ä is 0xE4 in Windows-1252)."""


def text(junctions: tuple[str, ...] = (SOUTH, OTHER)) -> str:
    """A tiny network: a reservoir feeding each junction through its own pipe."""
    rows = "".join(f" {j} 0 1\n" for j in junctions)
    pipes = "".join(f" P{i} R1 {j} 100 200 100\n" for i, j in enumerate(junctions))
    return (
        f"[TITLE]\nStation Süd\n[JUNCTIONS]\n{rows}[RESERVOIRS]\n R1 50\n[PIPES]\n{pipes}[OPTIONS]\n UNITS LPS\n[END]\n"
    )


def write(tmp_path: Path, data: bytes, name: str = "net.inp") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (text().encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF8 + text().encode("utf-8"), "utf-8"),
        (text().encode("cp1252"), "cp1252"),
        (codecs.BOM_UTF16_LE + text().encode("utf-16-le"), "utf-16"),
        (codecs.BOM_UTF16_BE + text().encode("utf-16-be"), "utf-16"),
    ],
)
def test_ids_that_differ_in_one_accented_letter_stay_distinct(tmp_path: Path, data: bytes, encoding: str) -> None:
    net = read_inp(write(tmp_path, data))
    assert [j.id for j in net.junctions] == [SOUTH, OTHER]
    assert net.name == "Station Süd"
    assert net.source_encoding == encoding


def test_the_encoding_does_not_take_part_in_comparisons(tmp_path: Path) -> None:
    utf8 = read_inp(write(tmp_path, text().encode("utf-8"), "a.inp"))
    cp1252 = read_inp(write(tmp_path, text().encode("cp1252"), "b.inp"))
    assert utf8.source_encoding != cp1252.source_encoding
    assert utf8 == cp1252


def test_bytes_windows_1252_leaves_undefined_are_read_as_latin_1() -> None:
    data = text(("J\x81", "J\x8d")).encode("latin-1")  # 0x81 and 0x8D: undefined in Windows-1252
    decoded, encoding = decode_inp(data)
    assert encoding == "latin-1"
    assert "J\x81" in decoded and "J\x8d" in decoded


def test_a_dos_end_of_file_mark_is_dropped() -> None:
    decoded, _ = decode_inp(text().encode("cp1252") + b"\x1a")
    assert not decoded.endswith("\x1a")


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)),
        bytes(range(256)) * 8,
        b"[JUNCTIONS]\n J1 0 1\x00\x00\n",
        codecs.BOM_UTF16_LE + b"[\x00J\x00\x00\xd8",  # a lone surrogate after the byte-order mark
    ],
)
def test_binary_files_are_refused_with_a_network_error(data: bytes) -> None:
    with pytest.raises(NetworkError, match=r"garbage\.inp: not a text file"):
        decode_inp(data, "garbage.inp")


def test_solving_a_binary_file_exits_2_without_a_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUMPTWIN_HOME", str(tmp_path / "home"))
    path = write(tmp_path, bytes(range(256)) * 8, "garbage.inp")
    result = CliRunner().invoke(app, ["solve", str(path)])
    assert result.exit_code == 2, result.output
    assert "garbage.inp: not a text file" in result.output
    assert "Traceback" not in result.output
