"""Tests of the Feast wrapper: offline writes, point-in-time training sets, online reads."""

from __future__ import annotations

import pandas as pd
import pytest

from pumptwin.features import store as st
from pumptwin.features.transforms.schema import feature_names

T0 = pd.Timestamp("2024-03-01T00:00:00Z")
PUMPS = ("PS01.P1", "PS01.P2")


def _frame(values, times):
    names = feature_names()
    rows = [
        {"pump_id": p, "event_timestamp": t, **dict.fromkeys(names, v + (10.0 if p == PUMPS[1] else 0.0))}
        for p in PUMPS
        for t, v in zip(times, values, strict=True)
    ]
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    feast_dir = tmp_path_factory.mktemp("feast")
    fs = st.open_store(feast_dir)
    st.apply_definitions(fs)
    times = T0 + pd.to_timedelta([0, 10, 20, 30], unit="min")
    st.write_offline(_frame([0.0, 1.0, 2.0, 3.0], times), feast_dir)
    return st, fs, feast_dir


def test_write_offline_is_idempotent(store):
    st, _fs, feast_dir = store
    path = st.offline_path(feast_dir)
    before = pd.read_parquet(path)
    times = T0 + pd.to_timedelta([10, 20], unit="min")
    st.write_offline(_frame([1.0, 2.0], times), feast_dir)
    after = pd.read_parquet(path)
    assert len(after) == len(before) == 8
    pd.testing.assert_frame_equal(after, before)
    with pytest.raises(st.StoreError, match="missing feature columns"):
        st.write_offline(pd.DataFrame({"pump_id": ["x"], "event_timestamp": [T0]}), feast_dir)


def test_training_set_is_point_in_time_correct(store):
    st, fs, _ = store
    entities = pd.DataFrame(
        {
            "pump_id": [PUMPS[0], PUMPS[1], PUMPS[0], PUMPS[0]],
            "event_timestamp": [
                T0 + pd.Timedelta("15min"),  # sees the 10-min row, not the 20-min one written "later"
                T0 + pd.Timedelta("20min"),  # exactly on a row
                T0 - pd.Timedelta("1min"),  # before any feature
                T0 + pd.Timedelta("5min").as_unit("ns") + pd.Timedelta(1, "ns"),  # ns floored to us
            ],
            "anomaly": [0, 1, 0, 1],
        }
    )
    out = st.training_set(fs, entities, "anomaly_detector")
    assert list(out["anomaly"]) == [0, 1, 0, 1]
    assert list(out["pump_id"]) == list(entities["pump_id"])
    values = out["head_residual_m"].tolist()
    assert values[0] == 1.0 and values[1] == 12.0 and pd.isna(values[2]) and values[3] == 0.0
    assert "vib_de_rms_mm_s_mean_1h" in out.columns and "flow_m3h_mean_24h" in out.columns
    ttf = st.training_set(fs, entities, "time_to_failure")
    assert "flow_m3h_mean_24h" in ttf.columns and "vib_de_rms_mm_s_mean_1h" not in ttf.columns
    with pytest.raises(st.StoreError, match="not one of"):
        st.training_set(fs, entities, "nope")


def test_materialize_and_online_features(store):
    st, fs, _ = store
    st.materialize(fs, T0 - pd.Timedelta("1h"), T0 + pd.Timedelta("1h"))
    out = st.online_features(fs, [PUMPS[1], PUMPS[0], "PS09.P9"], "time_to_failure").set_index("pump_id")
    assert out.loc[PUMPS[0], "head_residual_m"] == 3.0
    assert out.loc[PUMPS[1], "flow_m3h_mean_24h"] == 13.0
    assert pd.isna(out.loc["PS09.P9", "head_residual_m"])


@pytest.mark.parametrize(
    ("url", "connection"),
    [
        ("redis://127.0.0.1:6380/2", "127.0.0.1:6380,db=2"),
        ("redis://cache.example", "cache.example:6379,db=0"),
        ("redis://:s%40cret@cache:6379/0", "cache:6379,db=0,password=s@cret"),
        ("rediss://feast:pw@cache:6390/1", "cache:6390,db=1,username=feast,password=pw,ssl=true"),
        ("redis://[::1]:6379/3", "[::1]:6379,db=3"),
    ],
)
def test_redis_online_config(url, connection):
    assert st.redis_online_config(url) == {"type": "redis", "connection_string": connection}


@pytest.mark.parametrize(
    "url",
    [
        "http://cache:6379/0",
        "cache:6379",
        "redis://",
        "redis://cache:port/0",
        "redis://cache:6379/zero",
        "redis://:a,b@c/0",
    ],
)
def test_redis_online_config_rejects_bad_urls(url):
    with pytest.raises(st.StoreError, match="online store"):
        st.redis_online_config(url)


def test_sql_registry_config():
    config = st.sql_registry_config("postgresql+psycopg2://u:p@db.example:5432/feast")
    assert config["registry_type"] == "sql" and config["path"] == "postgresql+psycopg2://u:p@db.example:5432/feast"
    assert config["cache_ttl_seconds"] == st.REGISTRY_CACHE_TTL_S
    assert config["sqlalchemy_config_kwargs"]["pool_pre_ping"] is True
    assert "pool_pre_ping" not in st.sql_registry_config("sqlite:////tmp/registry.db")["sqlalchemy_config_kwargs"]
    with pytest.raises(st.StoreError, match="'not a url'"):
        st.sql_registry_config("not a url")


def test_open_store_on_services_config(tmp_path):
    registry = f"sqlite:///{(tmp_path / 'shared' / 'registry.db').as_posix()}"
    (tmp_path / "shared").mkdir()
    fs = st.open_store(tmp_path / "feast", online_store="redis://:pw@127.0.0.1:6390/4", registry=registry)
    assert fs.config.online_store.type == "redis"
    assert fs.config.online_store.connection_string == "127.0.0.1:6390,db=4,password=pw"
    assert fs.config.registry.path == registry
    assert (tmp_path / "feast" / st.DATA_DIR).is_dir()
    embedded = st.open_store(tmp_path / "embedded")
    assert embedded.config.online_store.type == "sqlite"
    assert embedded.config.registry.path.endswith("embedded/registry.db")
    with pytest.raises(st.StoreError, match="redis://nowhere:x"):
        st.open_store(tmp_path / "bad", online_store="redis://nowhere:x/0")
