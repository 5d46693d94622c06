#!/usr/bin/env bash
# Starts this machine's PostgreSQL 15 and prepares it for Spicegate and its
# integration tests (idempotent; run as root):
#   - role spicegate (password spicegate) that may create databases,
#     and a database spicegate it owns;
#   - track_commit_timestamp = on (SpiceDB's Watch API needs it);
#   - max_connections = 300 (several SpiceDB processes, each with its pools).
# Afterwards: postgres://spicegate:spicegate@127.0.0.1:5432/spicegate?sslmode=disable
set -euo pipefail

if ! command -v pg_ctlcluster >/dev/null; then
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15
fi

pg_ctlcluster 15 main start 2>/dev/null || pg_ctlcluster 15 main status >/dev/null

psql_su() { su postgres -c "psql -v ON_ERROR_STOP=1 -qtAc \"$1\""; }

until psql_su "SELECT 1" >/dev/null 2>&1; do sleep 0.2; done

if [ "$(psql_su "SELECT 1 FROM pg_roles WHERE rolname = 'spicegate'")" != "1" ]; then
	psql_su "CREATE ROLE spicegate LOGIN CREATEDB PASSWORD 'spicegate'"
fi
psql_su "ALTER ROLE spicegate LOGIN CREATEDB PASSWORD 'spicegate'"
if [ "$(psql_su "SELECT 1 FROM pg_database WHERE datname = 'spicegate'")" != "1" ]; then
	psql_su "CREATE DATABASE spicegate OWNER spicegate"
fi

restart=no
if [ "$(psql_su "SHOW track_commit_timestamp")" != "on" ]; then
	psql_su "ALTER SYSTEM SET track_commit_timestamp = on"
	restart=yes
fi
if [ "$(psql_su "SHOW max_connections")" -lt 300 ]; then
	psql_su "ALTER SYSTEM SET max_connections = 300"
	restart=yes
fi
if [ "$restart" = yes ]; then
	pg_ctlcluster 15 main restart
	until psql_su "SELECT 1" >/dev/null 2>&1; do sleep 0.2; done
fi
echo "PostgreSQL ready: postgres://spicegate:spicegate@127.0.0.1:5432/spicegate?sslmode=disable"
