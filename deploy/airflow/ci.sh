#!/usr/bin/env bash
# The Airflow DAG's tests, each in a fresh virtualenv with a real Airflow from PyPI: one 2.x and one 3.x.
#
#   deploy/airflow/ci.sh                  # the versions below
#   deploy/airflow/ci.sh 2.10.5 3.1.8     # others (one venv per major version: .venv-2, .venv-3)
#   TDGC_AIRFLOW_REUSE=1 deploy/airflow/ci.sh   # keep venvs that exist (faster, for local iteration)
#
# Each venv gets `pip install apache-airflow==X`, the Amazon provider (the reuse example's EcsRunTaskOperator),
# tdgc from this checkout with the simulator (`.[demo]`) and pytest; then a fresh AIRFLOW_HOME (sqlite) in a
# temporary directory, `airflow db migrate`, and `pytest deploy/airflow/tests`. The venvs and pip's cache stay
# in deploy/airflow (git-ignored); the rest is removed on exit. Takes 5 to 7 minutes on a 2-core machine
# (the reuse example's 100 DAG runs: 40 to 75 seconds per Airflow version).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
if [ $# -eq 0 ]; then
    set -- 2.11.2 3.3.2
fi
python="${PYTHON:-python3}"

# Nothing from the caller's Airflow may leak in (a real metadata DB, variables, connections).
for name in $(compgen -e); do
    case "$name" in AIRFLOW*) unset "$name" ;; esac
done

tmp="$(mktemp -d "${TMPDIR:-/tmp}/tdgc-airflow.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
export PIP_CACHE_DIR="$here/.pip-cache" PIP_DISABLE_PIP_VERSION_CHECK=1
export AIRFLOW__CORE__LOAD_EXAMPLES=False AIRFLOW__CORE__DAGS_FOLDER="$here"

timings=()
clock() { date +%s; }

for version in "$@"; do
    major="${version%%.*}"
    venv="$here/.venv-$major"
    echo "=== Airflow $version ($venv)"
    export AIRFLOW_HOME="$tmp/home-$major"

    start=$(clock)
    if [ -z "${TDGC_AIRFLOW_REUSE:-}" ] || [ ! -x "$venv/bin/airflow" ]; then
        rm -rf "$venv"
        "$python" -m venv "$venv"
    fi
    "$venv/bin/pip" install -q "apache-airflow==$version" apache-airflow-providers-amazon -e "$repo[demo]" "pytest>=8"
    installed=$(( $(clock) - start ))
    "$venv/bin/python" -c 'import airflow, boto3, moto, tdgc; from airflow.providers.amazon import __version__ as amazon
print("airflow", airflow.__version__, "| amazon provider", amazon, "| tdgc", tdgc.__version__, "| moto", moto.__version__,
      "| boto3", boto3.__version__)'

    start=$(clock)
    "$venv/bin/airflow" db migrate >"$tmp/migrate-$major.log" 2>&1 || { cat "$tmp/migrate-$major.log"; exit 1; }
    migrated=$(( $(clock) - start ))

    start=$(clock)
    # Airflow's own deprecation warnings (2.x's template context) are noise here; a test checks that the DAG
    # file itself triggers none.
    (cd "$repo" && "$venv/bin/python" -m pytest deploy/airflow/tests -q -p no:cacheprovider \
        -W ignore::DeprecationWarning --basetemp "$tmp/pytest-$major")
    tested=$(( $(clock) - start ))
    timings+=("Airflow $version: install ${installed}s, db migrate ${migrated}s, tests ${tested}s")
done

printf '%s\n' "${timings[@]}"
