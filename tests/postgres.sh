#!/usr/bin/env bash
# Install the PostgreSQL server binaries (Debian package) when initdb/pg_ctl are absent.
# The test suite starts its own throw-away server from them (tests/_pg.py); nothing is
# configured system-wide and no cluster is created here. Needs root and apt for the install.
set -euo pipefail
if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    exit 0
fi
if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "postgres.sh: PostgreSQL binaries absent and not root; cannot install" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# postgresql-common would create and start a system cluster; the tests do not need one.
mkdir -p /etc/postgresql-common
echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf
apt-get install -y -qq --no-install-recommends postgresql >/dev/null
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
