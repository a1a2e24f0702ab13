"""Shared fixtures of the retrieval tests: a tiny synthetic corpus, a local Qdrant folder, one model.

The embedding model is loaded once per session (the embedders share a process-wide backend); every
test gets its own Qdrant folder under ``tmp_path`` and the cached stores are closed after it. The
retrieval modules are imported inside the fixtures, so tests that need none of them stay light.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pumptwin.agents.retrieval import RetrievalConfig

SOP_BEARING = """---
id: SOP-906
doc_type: procedure
title: Response to high pump bearing temperature
assets: [PS01.P1, PS01.P2]
failure_modes: [bearing_wear]
operations: [speed_change]
date: 2025-03-14
revision: 2
---
# Response to high pump bearing temperature
Use this procedure when a main-line pump bearing runs hot.
## Scope
Applies to the drive-end and non-drive-end bearings of pumps PS01.P1 and PS01.P2 when the bearing
temperature alarm is raised by the monitoring system.
## Step 1: Check the lubrication
Check the oil level and oil condition of the hot bearing; top up or change the lubricating oil.
## Step 2: Reduce the pump speed
Lower the speed of the affected pump by ten percent and watch the bearing temperature trend.
"""

SOP_SEAL = """---
id: SOP-909
doc_type: procedure
title: Mechanical seal leak
assets: [PS02.P1]
failure_modes: [seal_failure]
operations: [standby_switch]
date: 2024-06-01
---
# Mechanical seal leak
## Scope
A leaking mechanical seal on PS02.P1 shows as a rising seal leakage flow on tag PS02.P1.SEAL_LEAK.
## Switch to the standby pump
Start the standby pump, stop the leaking pump and isolate it before the seal is replaced.
"""

MAN_VIB = """---
id: MAN-905
doc_type: manual
title: Vibration monitoring standard
assets: [PS01.P1, PS02.P1]
failure_modes: [vibration]
date: 2023-02-01
---
# Vibration monitoring standard
## Alarm limits
The drive-end vibration tag PS01.P1.VIB_DE_RMS alarms at 4.5 mm/s and trips at 7.1 mm/s.
## Measurement routes
Monthly routes record the casing vibration of every pump with a portable analyser.
"""

WORK_ORDERS = (
    "wo_id,asset,opened,closed,priority,failure_mode,symptom,finding,parts,action,outcome,downtime_h,procedure\n"
    "WO-90001,PS01.P1,2024-05-02,2024-05-04,high,bearing_wear,Bearing temperature high,"
    "Worn drive-end bearing,Bearing set,Replaced bearing,Temperature normal,36,SOP-906\n"
    "WO-90002,PS02.P1,2025-01-10,2025-01-11,medium,seal_failure,Seal leakage rising,"
    "Cracked seal face,Seal cartridge,Replaced seal,No leak,12,SOP-909\n"
    "WO-90003,PS01.P2,2026-02-01,2026-02-01,low,none,Routine lubrication,"
    "Oil fine,none,Changed oil,Done,0,SOP-906\n"
)


def write_corpus(root: Path) -> Path:
    """Write the synthetic corpus (3 Markdown documents, 3 work orders) under ``root``; return it."""
    (root / "procedures").mkdir(parents=True, exist_ok=True)
    (root / "manuals").mkdir(exist_ok=True)
    (root / "work_orders").mkdir(exist_ok=True)
    (root / "procedures" / "SOP-906.md").write_text(SOP_BEARING, encoding="utf-8")
    (root / "procedures" / "SOP-909.md").write_text(SOP_SEAL, encoding="utf-8")
    (root / "manuals" / "MAN-905.md").write_text(MAN_VIB, encoding="utf-8")
    (root / "work_orders" / "cmms.csv").write_text(WORK_ORDERS, encoding="utf-8")
    (root / "README.md").write_text("# Not a document\n", encoding="utf-8")
    return root


def minimal_pdf(pages: list[str]) -> bytes:
    """Return a minimal valid PDF with one line of Helvetica text per page."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", ""]
    kids = []
    font = 3 + 2 * len(pages)
    for i, text in enumerate(pages):
        page, content = 3 + 2 * i, 4 + 2 * i
        kids.append(f"{page} 0 R")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content} 0 R "
            f"/Resources << /Font << /F1 {font} 0 R >> >> >>"
        )
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        stream = f"BT /F1 10 Tf 20 700 Td ({escaped}) Tj ET"
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(pages)} >>"
    objects.append("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = b"%PDF-1.4\n"
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


@pytest.fixture(scope="session")
def embedding_model() -> str:
    """The packaged embedding model's folder, loaded once for the session."""
    from haystack_integrations.components.embedders.sentence_transformers import SentenceTransformersTextEmbedder

    from pumptwin.agents.retrieval import RetrievalConfig, model_path

    path = model_path(RetrievalConfig(path=Path("unused")))
    embedder = SentenceTransformersTextEmbedder(model=path, local_files_only=True, progress_bar=False, token=None)
    embedder.warm_up()
    return path


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A fresh copy of the synthetic corpus."""
    return write_corpus(tmp_path / "corpus")


@pytest.fixture
def config(tmp_path: Path, embedding_model: str) -> Iterator[RetrievalConfig]:
    """A config of a local Qdrant store under ``tmp_path``; stores are closed afterwards."""
    from pumptwin.agents.retrieval import RetrievalConfig, close_stores

    yield RetrievalConfig(path=tmp_path / "qdrant", collection="test")
    close_stores()
