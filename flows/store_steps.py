"""The steps of raw-store upkeep: check every partition and the watermarks, repair what is damaged.

`pumptwin store check` lists partitions and watermarks that cannot be read, watermarks later than
the wall clock, temporary files left by killed writes and files left by killed compactions;
`pumptwin store repair` moves unreadable partition files aside to ``<raw>/_corrupt/`` (with a
note), removes leftover temporary and superseded files, merges each partition's files into one
and rebuilds the watermarks from the stored partitions; `compact_store` merges each partition's
files into one, in bounded memory. `feature_store` opens the Feast store where the settings put
its registry and online store. Plain functions: the CLI runs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pumptwin.features.ingest.rawstore import RawStore, StoreCheck, StoreRepair
from pumptwin.flows.settings import Settings

if TYPE_CHECKING:
    from feast import FeatureStore


def raw_store(settings: Settings, *, max_workers: int | None = None) -> RawStore:
    """Open the raw store with the ingest settings (lock timeout, clock tolerance).

    Args:
        settings: The settings of this entry point.
        max_workers: Threads that write or read partitions at once; None for the store's default.

    Returns:
        The store at ``settings.raw_dir``.
    """
    return RawStore(
        settings.raw_dir,
        lock_timeout_s=settings.ingest.lock_timeout_s,
        max_future_s=settings.ingest.max_future_s,
        max_workers=max_workers,
    )


def feature_store(settings: Settings) -> FeatureStore:
    """Open the Feast store: offline file under ``settings.feast_dir``; registry and online store there or on servers.

    Args:
        settings: The settings of this entry point (`feast.online_store` Redis URL, `feast.registry` SQLAlchemy URL).

    Returns:
        The store (definitions not applied).
    """
    from pumptwin.features.store import open_store  # noqa: PLC0415 - imports feast

    return open_store(settings.feast_dir, online_store=settings.feast.online_store, registry=settings.feast.registry)


def check_store(settings: Settings) -> StoreCheck:
    """Read every partition and the watermarks of the raw store; report what cannot be read.

    Args:
        settings: The settings of this entry point.

    Returns:
        The findings; `ok` is False when something needs `repair_store`.
    """
    return raw_store(settings).check()


def repair_store(settings: Settings) -> StoreRepair:
    """Move unreadable partitions aside, remove leftover temporary files and rebuild the watermarks.

    Args:
        settings: The settings of this entry point.

    Returns:
        What was moved, removed and rebuilt.
    """
    return raw_store(settings).repair()


def compact_store(settings: Settings) -> int:
    """Merge the files of every partition of the raw store into one file each (bounded memory).

    Args:
        settings: The settings of this entry point.

    Returns:
        Partitions rewritten (a partition already in one file is left as it is).
    """
    return raw_store(settings).compact()
