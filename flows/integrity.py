"""The Prefect ``integrity`` flow: in-line inspection exports assessed into safe pressures, growth and a dig list.

Deployed from ``prefect.yaml`` as ``flows/integrity.py:integrity``. It reads one ILI export, or
every CSV/XLSX export of the drop folder (``PUMPTWIN_INTEGRITY_ILI_DIR``, default
``<home>/integrity/ili``), quarantines bad rows and refused files with their reasons, assesses
the newest run against the MAOP and the twin's base operating pressure at each feature
(``PUMPTWIN_INTEGRITY_METHOD``, ``PUMPTWIN_INTEGRITY_SAFETY_FACTOR``), measures corrosion growth
from the run before it, ranks the dig list, and writes the assessed features (read by the what-if
flow and the recommender), the dig list, the growth tables and the inspection report (indexed
with the knowledge corpus). The run publishes a markdown artifact ``integrity-line-01`` (per
line) with the counts, the top of the dig list and the files. The steps are in
`flows.integrity_steps`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from pumptwin.flows import integrity_steps as steps
from pumptwin.flows.settings import get_settings

read_runs_task = task(name="read-ili-runs", cache_policy=NO_CACHE)(steps.read_runs)
line_profile_task = task(name="line-profile", cache_policy=NO_CACHE)(steps.line_profile)
assess_task = task(name="assess-features", cache_policy=NO_CACHE)(steps.assess_runs)
write_task = task(name="write-integrity", cache_policy=NO_CACHE)(steps.write_outputs)


@flow(name="integrity")
def integrity(line: int = 1, path: str | None = None) -> dict[str, Any]:
    """Assess the newest ILI run of a line, with growth from the run before it, and rank the dig list.

    Args:
        line: The line inspected, 1-based (names the files and the artifact).
        path: One ILI export to read (None: every CSV/XLSX export of the drop folder).

    Returns:
        ``runs`` (ids read, oldest first), ``assessed_run``, ``refused`` (files with reasons),
        ``counts`` (features per category and on the dig list), ``growth`` (None with one run),
        ``top`` (feature ids at the top of the dig list) and ``files`` (paths by kind).
    """
    settings = get_settings()
    read = read_runs_task(settings, path)
    result = None
    paths: dict[str, Path] = {}
    if read.runs:
        result = assess_task(settings, read, line_profile_task(settings))
        paths = write_task(settings, result, line)
    create_markdown_artifact(
        key=f"integrity-line-{line:02d}",
        markdown=steps.integrity_markdown(read, result, paths, line),
        description=f"integrity of line {line}",
    )
    out = steps.summary(read, result, paths)
    get_run_logger().info(
        "line %d: %d runs read, %d refused, assessed %s: %s",
        line,
        len(read.runs),
        len(read.refused),
        out["assessed_run"],
        out["counts"],
    )
    return out
