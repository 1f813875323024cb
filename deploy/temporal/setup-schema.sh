#!/bin/sh
# One-shot before the Temporal server starts (compose service `temporal-schema`, image
# temporalio/admin-tools): brings Temporal's two databases to the schema of this server version.
# Idempotent: setup-schema only creates the version table (and records 0.0 the first time);
# update-schema applies only the versions newer than the recorded one. So it runs on every
# `docker compose up`, and moving the image tags upgrades the schema before the new server starts.
# The `temporal` role and both databases come from deploy/postgres/initdb/10-temporal.sh.
set -eu
: "${POSTGRES_SEEDS:?}" "${POSTGRES_USER:?}" "${SQL_PASSWORD:?}" # SQL_PASSWORD is read by temporal-sql-tool
DB_PORT="${DB_PORT:-5432}"
SCHEMA_DIR=/etc/temporal/schema/postgresql/v12

sql_tool() {
  temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$DB_PORT" -u "$POSTGRES_USER" "$@"
}

for pair in temporal:temporal temporal_visibility:visibility; do
  db="${pair%%:*}"
  dir="${pair#*:}"
  echo "temporal-schema: $db"
  sql_tool --db "$db" setup-schema -v 0.0
  sql_tool --db "$db" update-schema -d "$SCHEMA_DIR/$dir/versioned"
done
echo "temporal-schema: done"
