#!/bin/sh
# Run once by the postgres image on a new data volume: the two roles Slipway uses.
# The owner runs migrations; the runtime role (the app) owns nothing, so it can never
# TRUNCATE, ALTER or disable the audit log's trigger.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres <<SQL
CREATE ROLE slipway_owner LOGIN PASSWORD '${SLIPWAY_OWNER_PASSWORD}';
CREATE ROLE slipway_app LOGIN PASSWORD '${SLIPWAY_APP_PASSWORD}';
CREATE DATABASE slipway OWNER slipway_owner;
REVOKE ALL ON DATABASE slipway FROM PUBLIC;
GRANT CONNECT ON DATABASE slipway TO slipway_app;
SQL
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname slipway <<SQL
ALTER SCHEMA public OWNER TO slipway_owner;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO slipway_app;
SQL
