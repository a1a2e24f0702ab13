"""Production infrastructure: service definitions, work-pool and deployment templates.

Holds what a real deployment needs beyond the embedded default: the compose file for Postgres,
the Prefect server, the MLflow tracking server, Qdrant, Redis and object storage, and the
templates for Prefect work pools and workers. Nothing in the embedded default (local Prefect API,
MLflow on SQLite, Feast's local provider, Qdrant local mode) depends on this package.
"""
