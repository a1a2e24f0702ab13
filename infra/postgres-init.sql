-- Run once by the postgres image on an empty data volume (docker-entrypoint-initdb.d), as POSTGRES_USER.
-- One database per service; the services create their own tables on first start.
CREATE DATABASE prefect;
CREATE DATABASE mlflow;
CREATE DATABASE feast;

-- Prefect's server needs trigram indexes.
\connect prefect
CREATE EXTENSION IF NOT EXISTS pg_trgm;
