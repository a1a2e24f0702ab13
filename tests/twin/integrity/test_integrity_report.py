"""The ILI inspection report: a corpus document the knowledge loader reads, with the run's numbers in it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pumptwin.agents.documents import FAILURE_MODES, OPERATIONS, markdown_passages
from pumptwin.twin.integrity.assessment import assess_features
from pumptwin.twin.integrity.diglist import dig_list
from pumptwin.twin.integrity.growth import GrowthStudy, segment_growth
from pumptwin.twin.integrity.ili import FEATURE_COLUMNS, WELD_COLUMNS, IliRun
from pumptwin.twin.integrity.pipe import PipeProperties
from pumptwin.twin.integrity.report import ili_report_markdown, report_id

PIPE = PipeProperties("X52", 360e6, 460e6, 0.0087, 0.66)


def ili_run(run_id: str = "2024 run/A") -> IliRun:
    features = pd.DataFrame(
        {
            "feature_id": ["ML-1", "ML-2", "ML-3", "DN-1"],
            "log_distance_m": [1200.0, 2500.0, 4100.0, 5000.0],
            "chainage_m": [1400.0, 2700.0, 4300.0, 5200.0],
            "weld_number": [100.0, 210.0, 340.0, 420.0],
            "weld_distance_m": [3.2, 1.1, 7.9, 2.0],
            "clock_h": [4.5, 6.0, 11.0, 3.0],
            "feature_type": ["metal_loss", "metal_loss", "metal_loss", "dent"],
            "dimension_class": ["general", "pitting", "general", ""],
            "depth_frac": [0.84, 0.55, 0.2, np.nan],
            "length_m": [0.15, 0.08, 0.05, 0.2],
            "width_m": [0.1, 0.05, 0.05, 0.2],
            "surface": ["external", "external", "internal", ""],
            "wall_m": 0.0087,
            "vendor_erf": np.nan,
            "vendor_failure_pa": np.nan,
        }
    ).reindex(columns=list(FEATURE_COLUMNS))
    welds = pd.DataFrame({"weld_number": [100.0], "log_distance_m": [1196.8], "chainage_m": [1396.8]})
    return IliRun(
        run_id=run_id,
        date=pd.Timestamp("2024-06-01", tz="UTC"),
        vendor="Acme Pigging",
        tool="MFL",
        depth_sd_frac=0.078,
        length_sd_m=0.0195,
        features=features,
        welds=welds.reindex(columns=list(WELD_COLUMNS)),
        quarantined=pd.DataFrame({"reason": ["depth 140 % over 100 %"], "row": [12]}),
        source="acme_2024.csv",
    )


def growth() -> GrowthStudy:
    rates = pd.DataFrame(
        {
            "feature_id": ["ML-1", "ML-3"],
            "chainage_m": [1400.0, 4300.0],
            "depth_rate_m_per_year": [2e-4, -1e-5],
            "depth_rate_sd_m_per_year": [1.9e-4, 1.9e-4],
            "length_rate_m_per_year": [1e-3, 0.0],
            "negative_rate": [False, True],
        }
    )
    pairs = pd.DataFrame({"status": ["matched", "matched", "new", "missing"]})
    return GrowthStudy(
        "2019 run",
        "2024 run/A",
        5.0,
        "412 of 415 girth welds paired by weld number",
        pairs,
        rates,
        segment_growth(rates, 1000.0),
        1000.0,
    )


def report(with_growth: bool = True) -> tuple[str, pd.DataFrame]:
    run = ili_run()
    assessed = assess_features(run.features, PIPE, 5.0e6, 4.0e6)
    dig = dig_list(assessed, None, as_of=run.date)
    return ili_report_markdown(run, assessed, dig, growth() if with_growth else None, line=1), dig


def test_the_corpus_loader_reads_it_with_valid_metadata(tmp_path: Path) -> None:
    text, _ = report()
    path = tmp_path / f"{report_id('2024 run/A', 1)}.md"
    passages = markdown_passages(text, path)
    doc_id = "ILI-LINE01-2024-run-A"
    assert report_id("2024 run/A", 1) == doc_id
    ids = [p.id for p in passages]
    assert ids[0] == f"{doc_id}#run-summary"
    assert (
        f"{doc_id}#features-by-category" in ids and f"{doc_id}#dig-list" in ids and f"{doc_id}#corrosion-growth" in ids
    )
    assert f"{doc_id}#immediate-feature-ml-1-at-1-400-km" in ids
    assert f"{doc_id}#scheduled-feature-ml-2-at-2-700-km" in ids
    meta = passages[0].meta
    assert meta["doc_type"] == "inspection" and meta["assets"] == ["LINE01"] and meta["date"] == "2024-06-01"
    assert set(meta["failure_modes"]) <= FAILURE_MODES and "leak" in meta["failure_modes"]
    assert set(meta["operations"]) <= OPERATIONS and "throughput_reduction" in meta["operations"]


def test_numbers_in_the_sections() -> None:
    text, dig = report()
    section = text.split("## Immediate feature ML-1")[1].split("## ")[0]
    for fragment in ("84 % of wall", "150.0 mm", "4:30 o'clock", "3.20 m downstream of girth weld 100", "LINE01"):
        assert fragment in section, section
    safe = dig.set_index("feature_id").loc["ML-1", "safe_pa"]
    assert f"safe pressure {safe / 1e6:.2f} MPa" in section
    assert "| immediate | 1 |" in text and "| scheduled | 1 |" in text and "| monitor | 1 |" in text
    growth_part = text.split("## Corrosion growth")[1]
    assert "5.0 years" in growth_part and "2 metal-loss features matched, 1 new" in growth_part
    assert "1 matched features show a negative measured rate" in growth_part
    assert "1 rows of the vendor's list were quarantined" in text


def test_id_is_stable_and_one_run_reports_no_growth() -> None:
    text, _ = report(with_growth=False)
    again, _ = report(with_growth=False)
    assert text == again
    assert "No earlier inspection run of LINE01" in text
