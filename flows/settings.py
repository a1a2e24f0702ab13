"""The one settings object, read from `PUMPTWIN_*` environment variables.

`Settings` is composed of one group per concern, each with its own environment prefix
(`PUMPTWIN_TWIN_`, `PUMPTWIN_MLFLOW_`, `PUMPTWIN_MODELS_`, `PUMPTWIN_PREFECT_`, `PUMPTWIN_HISTORIAN_`,
`PUMPTWIN_INGEST_`, `PUMPTWIN_AGENTS_`, `PUMPTWIN_CONTROL_`, `PUMPTWIN_INTEGRITY_`, `PUMPTWIN_INSPECTION_`,
`PUMPTWIN_FEAST_`, `PUMPTWIN_STORAGE_`, `PUMPTWIN_RUNNER_`).
Every field is read by some entry point or step (a test checks it); a setting nothing reads is
removed rather than documented.
A field can also be set through the root with the nested delimiter `__`:
`PUMPTWIN_TWIN__ACCURACY=1e-8` and `PUMPTWIN_TWIN_ACCURACY=1e-8` mean the same.

Every piece of embedded state lives under `Settings.home` (default `.pumptwin`, set by
`PUMPTWIN_HOME`), so deleting that folder starts clean. Importing this module does no work: entry
points call `get_settings()` once, which builds the object and applies the offline environment,
and then pass plain values down to the core packages.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pumptwin.twin.errors import PumptwinError

ENV_PREFIX = "PUMPTWIN_"
"""Prefix of every pumptwin environment variable."""

OFFLINE_ENVIRONMENT: dict[str, str] = {
    "DO_NOT_TRACK": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "HAYSTACK_TELEMETRY_ENABLED": "False",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}
"""Variables that stop libraries from phoning home or downloading at run time (see STACK-NOTES)."""


class SettingsError(PumptwinError, ValueError):
    """A setting that what was asked needs is missing or invalid; the message names its variable."""


class TwinSettings(BaseSettings):
    """Settings of the physics twin: which network to load and how closely to solve it."""

    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}TWIN_", extra="forbid")

    network: Path | None = Field(
        default=None,
        description="Network file (EPANET .inp or pumptwin YAML); None loads the packaged reference pipeline.",
    )
    accuracy: float = Field(
        default=1e-6,
        gt=0,
        description="Convergence criterion of the hydraulic solver: sum of flow changes over sum of flows.",
    )
    max_memory_mb: float = Field(
        default=4096.0,
        gt=0,
        description="Largest estimated memory of one solver or what-if run, MB; a longer or finer run is refused.",
    )


class MlflowSettings(BaseSettings):
    """Where MLflow keeps runs, the model registry and artifacts."""

    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}MLFLOW_", extra="forbid")

    tracking_uri: str | None = Field(
        default=None,
        description="MLflow tracking and registry URI; None means SQLite at `sqlite:///<home>/mlflow.db`.",
    )
    artifact_root: Path | None = Field(
        default=None,
        description="Folder for run artifacts with the embedded store; None means `<home>/mlartifacts`.",
    )


class ModelSettings(BaseSettings):
    """How features are built and models are trained, calibrated and promoted."""

    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}MODELS_", extra="forbid")

    cadence_s: float = Field(default=600.0, gt=0, description="Feature cadence per pump in s.")
    short_window_s: float = Field(default=3600.0, gt=0, description="Short rolling window of the features in s.")
    long_window_s: float = Field(default=86400.0, gt=0, description="Long rolling window of the features in s.")
    target_far: float = Field(
        default=0.002,
        gt=0,
        lt=1,
        description="False-alarm rate the anomaly threshold is calibrated to, per feature row on healthy data.",
    )
    min_run: int = Field(default=3, ge=1, description="Feature rows an anomaly must persist before it alarms.")
    train_fraction: float = Field(
        default=0.6,
        gt=0,
        lt=1,
        description="Share of the feature window (in time) used for training; the rest is the held-out window.",
    )
    seed: int = Field(default=7, description="Seed of every model: the same data gives the same model.")
    min_improvement: float = Field(
        default=0.0,
        ge=0,
        description="How much a challenger must beat the champion's held-out score by to be promoted.",
    )
    autoencoder: bool = Field(
        default=False,
        description=(
            "Add the PyTorch autoencoder to the pump detector as a second member (off: it raised healthy-run false "
            "alarms from 0 to about 3 per asset-month in `benchmarks.early_warning --autoencoder`)."
        ),
    )
    false_alarm_window_s: float = Field(
        default=86400.0,
        gt=0,
        description=(
            "How long after a false alarm's start its pump's rows count at least as confirmed healthy when the "
            "models are retrained, s (up to the twin state the approver judged, when that is later)."
        ),
    )
    max_threshold_raise: float = Field(
        default=2.0,
        ge=1,
        description=(
            "Largest factor a pump's anomaly threshold is raised by so its confirmed false alarms stop alarming "
            "(1: false alarms are not learnt from)."
        ),
    )
    confirmed_weight: float = Field(
        default=5.0,
        gt=0,
        description=(
            "Weight of a row confirmed healthy (a rejected false alarm) in the diagnosis model's training, "
            "against 1 for the others."
        ),
    )


class PrefectSettings(BaseSettings):
    """Which Prefect API the flows talk to."""

    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}PREFECT_", extra="forbid")

    api_url: str | None = Field(
        default=None,
        description="Prefect API URL, e.g. `http://127.0.0.1:4200/api`; None uses Prefect's temporary local API.",
    )


class IngestSettings(BaseSettings):
    """How readings are admitted to the raw store: clock tolerance, late data, memory, locks."""

    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}INGEST_", extra="forbid")

    max_future_s: float = Field(
        default=300.0,
        ge=0,
        description="How far past the wall clock a reading may lie, s; later readings are quarantined.",
    )
    overlap_s: float = Field(
        default=86400.0,
        ge=0,
        description="How far before a tag's watermark an incremental historian read starts, s (late, buffered data).",
    )
    chunk_readings: int = Field(
        default=1_000_000,
        ge=1000,
        description="Readings read, validated and stored per chunk of a file; bounds an ingest's memory.",
    )
    lock_timeout_s: float = Field(
        default=600.0,
        gt=0,
        description="How long a writer waits for a partition or the watermarks held by another ingest, s.",
    )


class HistorianSettings(BaseSettings):
    """Where the historian (a PI Web API server) is and how to sign in."""

    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}HISTORIAN_", extra="forbid")

    url: str | None = Field(default=None, description="PI Web API base URL, e.g. `https://pi.example/piwebapi`.")
    data_server: str | None = Field(default=None, description="PI Data Archive name; None uses the first listed.")
    username: str | None = Field(default=None, description="User for basic authentication.")
    password: SecretStr | None = Field(default=None, description="Password; never logged or serialized.")
    token: SecretStr | None = Field(default=None, description="Bearer token (instead of user and password).")
    verify_tls: bool = Field(default=True, description="Check the server's TLS certificate.")
    timeout_s: float = Field(default=30.0, gt=0, description="Timeout of one HTTP request in s.")
    max_count: int = Field(default=10_000, ge=1, description="Most values the server returns per request.")


class AgentSettings(BaseSettings):
    """Knowledge retrieval, the recommender's objective and the optional language model."""

    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}AGENTS_", extra="forbid")

    qdrant_url: str | None = Field(
        default=None,
        description="Qdrant server URL, e.g. `http://127.0.0.1:6333`; None: a local store under `<home>/knowledge`.",
    )
    qdrant_api_key: SecretStr | None = Field(default=None, description="API key of the Qdrant server.")
    collection: str = Field(default="pumptwin_knowledge", min_length=1, description="Qdrant collection name.")
    documents: list[Path] = Field(
        default_factory=list,
        description="Folders or files of the operator's own documents indexed beside the packaged corpus.",
    )
    packaged_corpus: bool = Field(
        default=True, description="Index the packaged corpus of the reference fleet beside the operator's documents."
    )
    top_k: int = Field(default=5, ge=1, le=100, description="Passages retrieved per query.")
    weight_risk: float = Field(default=10.0, ge=0, description="Score per unit of risk reduced (severity).")
    weight_margin: float = Field(default=1.0, ge=0, description="Score per unit of least relative margin gained.")
    weight_energy_per_mwh: float = Field(default=0.5, ge=0, description="Cost per MWh/day of shaft energy added.")
    weight_throughput_per_pct: float = Field(default=1.0, ge=0, description="Cost per % of throughput lost.")
    weight_maintenance: float = Field(default=1.0, ge=0, description="Cost of taking a pump out of service.")
    min_gain: float = Field(
        default=1.0, ge=0, description="Least score gain over keeping on as now for an action to be recommended."
    )
    refusal_hold_s: float = Field(
        default=43_200.0,
        ge=0,
        description=(
            "How long an approved action the twin's re-check refused, or the plant did not deliver as the twin "
            "predicted, is not proposed again on its line, s."
        ),
    )
    llm_url: str | None = Field(
        default=None,
        description="OpenAI-compatible endpoint (vLLM, Ollama): `http://127.0.0.1:8000/v1`; None: grounded text only.",
    )
    llm_model: str = Field(default="local", min_length=1, description="Model name sent to the endpoint.")
    llm_api_key: SecretStr | None = Field(default=None, description="API key of the endpoint, if it needs one.")
    llm_timeout_s: float = Field(default=60.0, gt=0, description="Timeout of one language-model request, s.")
    llm_agent: bool = Field(
        default=False,
        description="With a language model, also run it as a tool-using agent that may propose actions of its own.",
    )


class ControlSettings(BaseSettings):
    """The closed loop's implementation step: control system, guardrails, approval and interlocks."""

    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}CONTROL_", extra="forbid")

    backend: Literal["plant", "opcua"] = Field(
        default="plant",
        description="Control system written to: `plant` (the simulated plant, saved in `plant_file`) or `opcua`.",
    )
    opcua_url: str | None = Field(
        default=None, description="OPC UA endpoint of the control system, e.g. `opc.tcp://10.0.0.5:4840/`."
    )
    opcua_timeout_s: float = Field(default=5.0, gt=0, description="Timeout of one OPC UA call, s.")
    auto_implement: bool = Field(
        default=True,
        description="Implement small speed changes that keep every limit without waiting for a person.",
    )
    auto_off_stations: list[str] = Field(
        default_factory=list, description="Stations (`PS01`) where nothing is implemented without a person."
    )
    auto_max_speed_change: float = Field(
        default=0.03, ge=0, le=0.2, description="Largest relative speed change implemented without a person."
    )
    approval_timeout_s: int = Field(
        default=3600, ge=1, description="How long a recommendation waits for an approver's answer, s."
    )
    approval_poll_s: int = Field(
        default=10, ge=1, description="How often a paused run checks whether it was answered, s."
    )
    on_timeout: Literal["expire", "escalate"] = Field(
        default="expire", description="What an unanswered request becomes: `expire` or `escalate` (to `escalate_to`)."
    )
    escalate_to: str = Field(
        default="shift supervisor", min_length=1, description="Who an unanswered request is escalated to."
    )
    max_rate_per_s: float = Field(
        default=0.002, gt=0, description="Fastest relative speed change the interlocks ramp at, per s."
    )
    ramp_step: float = Field(default=0.02, gt=0, description="Largest relative speed change of one ramp step.")
    settle_s: float = Field(
        default=120.0, ge=0, description="Time the plant is given to respond before it is checked, s."
    )
    readback_tolerance: float = Field(
        default=0.002, gt=0, description="Largest difference between a written and a read-back relative speed."
    )
    retries: int = Field(default=3, ge=0, description="Retries of a write that was not read back.")
    retry_wait_s: float = Field(default=1.0, ge=0, description="Wait before retrying a write, s.")
    response_tolerance: float = Field(
        default=0.1,
        gt=0,
        description="Allowed deviation of the plant's response (pump flow, discharge pressure) from the twin's "
        "prediction, as a share of the predicted value; a larger one rolls the change back.",
    )
    audit_path: Path | None = Field(
        default=None, description="The append-only audit log (JSON Lines); None: `<home>/control/audit.jsonl`."
    )
    plant_file: Path | None = Field(
        default=None, description="Saved simulated plant of the `plant` backend; None: `<home>/control/plant.pkl`."
    )
    plant_scenario: str = Field(
        default="developing_faults",
        min_length=1,
        description="Shipped plant scenario a new simulated plant starts from when `plant_file` does not exist.",
    )


class IntegritySettings(BaseSettings):
    """Pipe integrity: in-line inspection lists, metal-loss assessment and safe pressures in what-ifs."""

    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}INTEGRITY_", extra="forbid")

    ili_dir: Path | None = Field(
        default=None, description="Folder of ILI anomaly lists (CSV or Excel); None: `<home>/integrity/ili`."
    )
    pipe_file: Path | None = Field(
        default=None,
        description="Pipe properties (grade, wall, diameter) and ILI reference points; None: the reference line's.",
    )
    method: Literal["b31g_modified", "dnv_f101"] = Field(
        default="b31g_modified", description="Metal-loss assessment method of the safe pressure."
    )
    safety_factor: float = Field(
        default=1.39, gt=1.0, description="Failure pressure over safe pressure (1.39: a design factor of 0.72)."
    )
    margin: float = Field(
        default=1.0,
        gt=0,
        le=1.0,
        description="Share of each feature's safe pressure a what-if may use; above it is an INTEGRITY violation.",
    )


class InspectionSettings(BaseSettings):
    """Station inspections: route data admission, sensor-health checks and the condition-based round."""

    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}INSPECTION_", extra="forbid")

    route_dir: Path | None = Field(
        default=None,
        description="Drop folder of route files from the collectors; None: `<home>/inspection/incoming`.",
    )
    vibration_tolerance: float = Field(
        default=0.3,
        gt=0,
        description="Relative difference between a route and an online vibration reading that flags the sensor.",
    )
    temperature_tolerance_k: float = Field(
        default=5.0, gt=0, description="Difference between a route and an online temperature that flags the sensor, K."
    )
    round_budget_h: float = Field(default=16.0, gt=0, description="Inspection hours of one week's round.")
    max_interval_days: float = Field(
        default=182.0, gt=0, description="Longest time an asset goes without a physical visit, days."
    )
    visit_hours: float = Field(default=1.0, gt=0, description="Hours of one asset's inspection on a visit.")
    travel_hours: float = Field(default=2.0, ge=0, description="Travel hours to a station and back.")
    escalation: float = Field(
        default=2.0,
        gt=1,
        description="Factor by which a condition a route has seen must grow to call for a visit again.",
    )
    seen_half_life_days: float = Field(
        default=180.0, gt=0, description="Half-life of the reassurance of what a route has seen, days."
    )


class FeastSettings(BaseSettings):
    """Where Feast keeps its registry and online store (the offline file stays under `<home>/feast`)."""

    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}FEAST_", extra="forbid")

    online_store: str | None = Field(
        default=None,
        description="Redis online store, `redis://host:6379/0` (password in the URL); None: SQLite in `<home>/feast`.",
    )
    registry: str | None = Field(
        default=None,
        description="SQL registry as a SQLAlchemy URL, e.g. `postgresql+psycopg2://u:p@host/feast`; None: SQLite.",
    )


class StorageSettings(BaseSettings):
    """Object storage (S3 or an S3-compatible server) for the raw store's replica."""

    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}STORAGE_", extra="forbid")

    raw_url: str | None = Field(
        default=None,
        description="Object-storage copy of the raw store, `s3://bucket/prefix`, same layout; None: local only.",
    )
    endpoint_url: str | None = Field(
        default=None,
        description="Endpoint of an S3-compatible server, e.g. `http://127.0.0.1:9000`; None: AWS's own endpoints.",
    )


class RunnerSettings(BaseSettings):
    """Which task runner spreads per-station work and scenario fan-out."""

    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}RUNNER_", extra="forbid")

    kind: Literal["local", "dask"] = Field(
        default="local", description="`local`: threads in the flow's process; `dask`: Prefect's Dask task runner."
    )
    address: str | None = Field(
        default=None,
        description="Scheduler of a running Dask cluster, `tcp://host:8786`; None with `dask` starts a local cluster.",
    )
    workers: int = Field(
        default=2, ge=1, description="Threads of the local runner, or worker processes of a local Dask cluster."
    )


_GROUPS: dict[str, type[BaseSettings]] = {
    "agents": AgentSettings,
    "control": ControlSettings,
    "historian": HistorianSettings,
    "ingest": IngestSettings,
    "inspection": InspectionSettings,
    "integrity": IntegritySettings,
    "twin": TwinSettings,
    "mlflow": MlflowSettings,
    "models": ModelSettings,
    "prefect": PrefectSettings,
    "feast": FeastSettings,
    "storage": StorageSettings,
    "runner": RunnerSettings,
}


class Settings(BaseSettings):
    """Root settings of pumptwin, composed of one group per concern.

    Build it once per entry point (flow, CLI, service) with `get_settings()` and pass plain values
    down; core functions never take a `Settings`.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid")

    home: Path = Field(
        default=Path(".pumptwin"),
        description="Folder holding every piece of embedded state; delete it to start clean.",
    )
    twin: TwinSettings = Field(default_factory=TwinSettings, description="Physics twin and hydraulic solver.")
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings, description="Experiment tracking and registry.")
    models: ModelSettings = Field(default_factory=ModelSettings, description="Features, training and promotion.")
    prefect: PrefectSettings = Field(default_factory=PrefectSettings, description="Orchestration API.")
    historian: HistorianSettings = Field(default_factory=HistorianSettings, description="PI Web API historian.")
    ingest: IngestSettings = Field(
        default_factory=IngestSettings, description="Admission of readings to the raw store."
    )
    agents: AgentSettings = Field(
        default_factory=AgentSettings, description="Knowledge retrieval, recommender and language model."
    )
    control: ControlSettings = Field(
        default_factory=ControlSettings, description="Implementation of actions: guardrails, approval, interlocks."
    )
    integrity: IntegritySettings = Field(
        default_factory=IntegritySettings, description="Pipe integrity: ILI lists, assessment, safe pressures."
    )
    inspection: InspectionSettings = Field(
        default_factory=InspectionSettings, description="Station inspections: route data and round planning."
    )
    feast: FeastSettings = Field(default_factory=FeastSettings, description="Feature store registry and online store.")
    storage: StorageSettings = Field(default_factory=StorageSettings, description="Object storage of the raw store.")
    runner: RunnerSettings = Field(default_factory=RunnerSettings, description="Task runner of per-station work.")

    @field_validator(
        "twin",
        "mlflow",
        "models",
        "prefect",
        "historian",
        "ingest",
        "agents",
        "control",
        "integrity",
        "inspection",
        "feast",
        "storage",
        "runner",
        mode="before",
    )
    @classmethod
    def _build_group(cls, value: object, info: ValidationInfo) -> object:
        """Build a group from a dict, so its own `PUMPTWIN_<GROUP>_*` variables fill the other fields."""
        if isinstance(value, dict) and info.field_name is not None:
            return _GROUPS[info.field_name](**value)
        return value

    @property
    def bench_dir(self) -> Path:
        """Folder for benchmark results."""
        return self.home / "bench"

    @property
    def numba_cache_dir(self) -> Path:
        """Folder where Numba caches compiled kernels."""
        return self.home / "numba"

    @property
    def raw_dir(self) -> Path:
        """Root of the raw store (parquet, partitioned by station and day)."""
        return self.home / "raw"

    @property
    def validation_dir(self) -> Path:
        """Folder of the validation reports (HTML, JSON, markdown per run)."""
        return self.home / "validation"

    @property
    def feast_dir(self) -> Path:
        """Folder for Feast's embedded registry, online store and offline data."""
        return self.home / "feast"

    @property
    def labels_dir(self) -> Path:
        """Folder of fault labels (simulator ground truth, maintenance records) for training."""
        return self.home / "labels"

    @property
    def scores_dir(self) -> Path:
        """Folder of model scores written by the score flow for the twin."""
        return self.home / "scores"

    @property
    def state_dir(self) -> Path:
        """Folder of the twin's state: calibration, health table and alerts."""
        return self.home / "twin"

    @property
    def knowledge_dir(self) -> Path:
        """Folder of the local Qdrant store of the knowledge corpus (unused with a Qdrant server)."""
        return self.home / "knowledge"

    @property
    def recommend_dir(self) -> Path:
        """Folder of recommendations (markdown, JSON) written by the recommend flow."""
        return self.home / "recommend"

    @property
    def whatif_dir(self) -> Path:
        """Folder of what-if results (tables, JSON, plots)."""
        return self.home / "whatif"

    @property
    def integrity_dir(self) -> Path:
        """Folder of pipe-integrity results: assessed features, growth, dig lists."""
        return self.home / "integrity"

    @property
    def inspection_dir(self) -> Path:
        """Folder of station inspection data: the route store and the planned rounds."""
        return self.home / "inspection"

    @property
    def prefect_home(self) -> Path:
        """Folder for Prefect's embedded state (its SQLite database)."""
        return self.home / "prefect"

    @property
    def mlflow_tracking_uri(self) -> str:
        """The MLflow tracking URI: the configured one, else SQLite under `home`."""
        if self.mlflow.tracking_uri is not None:
            return self.mlflow.tracking_uri
        return f"sqlite:///{(self.home / 'mlflow.db').absolute().as_posix()}"

    @property
    def mlflow_artifact_root(self) -> Path:
        """Folder for MLflow artifacts with the embedded store."""
        return self.mlflow.artifact_root if self.mlflow.artifact_root is not None else self.home / "mlartifacts"


def apply_offline_environment(settings: Settings) -> None:
    """Set the process environment for offline, embedded operation and create `settings.home`.

    Uses `os.environ.setdefault`, so a value the caller already set wins. Sets every variable in
    `OFFLINE_ENVIRONMENT`, `NUMBA_CACHE_DIR` (to `<home>/numba`), `PREFECT_HOME` (to
    `<home>/prefect`) and, when `settings.prefect.api_url` is set, `PREFECT_API_URL`.
    Call it before importing numba or prefect: both read these variables at import.

    Args:
        settings: The settings of this entry point.
    """
    for name, value in OFFLINE_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("NUMBA_CACHE_DIR", str(settings.numba_cache_dir.absolute()))
    os.environ.setdefault("PREFECT_HOME", str(settings.prefect_home.absolute()))
    if settings.prefect.api_url is not None:
        os.environ.setdefault("PREFECT_API_URL", settings.prefect.api_url)
    settings.home.mkdir(parents=True, exist_ok=True)


def get_settings() -> Settings:
    """Build the settings from the environment and apply the offline environment.

    Entry points (flows, the CLI, services) call this once and pass values down.

    Returns:
        The settings of this process.
    """
    settings = Settings()
    apply_offline_environment(settings)
    return settings
