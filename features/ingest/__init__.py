"""Ingestion: historian readings from files, the plant simulator and the PI Web API into the raw store.

Modules:
    contract: the tag-reading table (`tag`, `ts`, `value`, `quality`) and its helpers.
    sources: readers that turn CSV/Parquet files, folders and in-memory frames into readings,
        rejected rows with a reason, and problems that name the file; they never raise on bad input.
    pi_web_api: a client for the PI Web API's REST endpoints (points, recorded values, batch) with
        adaptive chunking under the server's cap on returned values, timeouts and retries.
    rawstore: the raw store (parquet partitioned by station and UTC day, deduplicated on (tag, ts),
        written atomically and idempotently), per-tag watermarks and the quarantine table.
    pipeline: `ingest_frame`, `ingest_path` and `ingest_source`: source -> optional validation ->
        store, returning an `IngestSummary`.

Nothing here imports an orchestrator or does work at import time.
"""
