"""The Prefect ``ingest`` flow: read a source over a window, validate, store, quarantine, report.

Deployed from ``prefect.yaml`` as ``flows/ingest.py:ingest``, one run at a time (the deployment's
concurrency limit; the raw store's locks also keep concurrent writers from losing rows). The steps
are the plain functions of `flows.ingest_steps`; reading retries on transient historian errors.
Files are read chunk by chunk in the store step. Each run publishes a markdown artifact: rows in,
stored, quarantined by reason, unknown tags, per station, and the validation summary.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import requests
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from pumptwin.features.ingest.pi_web_api import PIWebAPITransientError
from pumptwin.flows.ingest_steps import read_source, store_source
from pumptwin.flows.settings import get_settings


def _transient(exc: BaseException) -> bool:
    """True for errors worth retrying: the historian timed out or refused for a while."""
    return isinstance(exc, PIWebAPITransientError | requests.ConnectionError | requests.Timeout | TimeoutError)


def _retry_transient(task_: Any, task_run: Any, state: Any) -> bool:  # noqa: ANN401 - Prefect's callback shape
    try:
        state.result()
    except Exception as exc:  # noqa: BLE001 - the predicate only classifies the failure
        return _transient(exc)
    return False


read_source_task = task(
    name="read-source", retries=3, retry_delay_seconds=[2, 10, 30], retry_condition_fn=_retry_transient
)(read_source)
store_source_task = task(name="validate-and-store")(store_source)


@flow(name="ingest")
def ingest(
    source: str = "simulator:bearing_failure",
    start: datetime | None = None,
    end: datetime | None = None,
    incremental: bool = True,
) -> dict[str, Any]:
    """Ingest one source over [start, end): read, validate, store good rows, quarantine the rest.

    Args:
        source: A file or folder path, ``simulator:SCENARIO`` or ``pi:NAME_FILTER``.
        start: Start of the window (UTC); None takes everything the source has.
        end: End of the window (UTC, exclusive).
        incremental: For ``pi:`` sources without a start, read from each point's watermark minus
            the overlap; every row read is stored or recognised as a duplicate either way.
    """
    settings = get_settings()
    result = read_source_task(source, settings, start, end, incremental=incremental)
    report = store_source_task(result, settings)
    create_markdown_artifact(key="ingest-summary", markdown=report.to_markdown(), description=f"ingest of {source}")
    get_run_logger().info(
        "stored %d of %d rows, quarantined %d", report.summary.stored, report.summary.rows_in, report.summary.rejected
    )
    return report.summary.to_dict()
