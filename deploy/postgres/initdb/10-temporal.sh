#!/bin/sh
# Runs once, when the postgres volume is first initialised (/docker-entrypoint-initdb.d):
# Temporal gets its own role and its two databases, apart from the app's database
# (POSTGRES_DB, owned by POSTGRES_USER). The schemas inside are created and upgraded by the
# `temporal-schema` one-shot service (deploy/temporal/setup-schema.sh) on every start.
# No `set -u`: the entrypoint sources scripts that are not executable, and would inherit it.
set -e

if [ -z "$TEMPORAL_DB_PASSWORD" ]; then
  echo "TEMPORAL_DB_PASSWORD is not set" >&2
  exit 1
fi

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v temporal_password="$TEMPORAL_DB_PASSWORD" <<'SQL'
CREATE ROLE temporal LOGIN PASSWORD :'temporal_password';
CREATE DATABASE temporal OWNER temporal;
CREATE DATABASE temporal_visibility OWNER temporal;
SQL
