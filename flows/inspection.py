"""The Prefect ``inspection-ingest`` flow: route files from the collectors into the store and the twin.

Reads every file in the drop folder (``settings.inspection.route_dir``; None:
``<home>/inspection/incoming``), validates it (`twin.inspection.routes`), stores the good rows in
the route store (``<home>/inspection/routes``), quarantines rejected rows and unreadable files
under ``<home>/quarantine/routes/`` with their reasons, and moves the files read to
``processed/``. It then weighs the route readings against the raw store's online tags (sensor
flags) and fuses the stored route evidence into the saved twin state. The run publishes one
markdown artifact (``inspection-ingest``): files, rows stored, quarantine with reasons, sensor
flags and route findings. The steps are the plain functions of `flows.inspection_steps`.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from pumptwin.flows import inspection_steps as steps
from pumptwin.flows.settings import get_settings

admit_task = task(name="admit-route-files", cache_policy=NO_CACHE)(steps.admit_routes)
flags_task = task(name="check-online-sensors", cache_policy=NO_CACHE)(steps.batch_flags)
fuse_task = task(name="fuse-route-evidence", cache_policy=NO_CACHE)(steps.fuse_saved_state)


@flow(name="inspection-ingest")
def inspection_ingest(now: str | None = None) -> dict[str, Any]:
    """Admit the waiting route files, check the online sensors against them, and fuse them into the twin.

    Args:
        now: Latest acceptable route time (ISO 8601, UTC); None: the wall clock.

    Returns:
        ``files`` (one summary per file), ``stored``, ``quarantined``, ``flags`` (sensor flag lines),
        ``fused`` (whether a saved twin state took the evidence) and ``message``.
    """
    settings = get_settings()
    admission = admit_task(settings, now)
    flags = flags_task(settings, admission)
    fusion = fuse_task(settings) if admission.stored or admission.files else None
    message = steps.summary_line(admission, flags, fusion)
    create_markdown_artifact(
        key="inspection-ingest",
        markdown=steps.inspection_markdown(admission, flags, fusion),
        description="inspection-ingest",
    )
    get_run_logger().info(message)
    return {
        "files": [
            {
                "name": f.name,
                "kind": f.kind,
                "rows": f.rows,
                "stored": f.stored,
                "quarantined": f.quarantined,
                "error": f.error,
                "moved_to": str(f.moved_to),
            }
            for f in admission.files
        ],  # fmt: skip
        "stored": admission.stored,
        "quarantined": admission.quarantined,
        "flags": [f.message() for f in flags],
        "fused": fusion is not None,
        "message": message,
    }
