#!/usr/bin/env bash
# The one test command (README): install what the tests need, then lint, type-check and run
# pytest.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"
VENV=${SEACO_VENV:-$PWD/.venv}
PY="$VENV/bin/python"

# System packages the tests use: espeak-ng (Mandarin-like speech) and chromium (browser tests).
missing=()
command -v espeak-ng >/dev/null || missing+=(espeak-ng)
command -v chromium >/dev/null || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "note: ${missing[*]} missing and not root; the tests that need them will skip" >&2
    fi
fi

[ -x "$PY" ] || python3 -m venv "$VENV"
stamp="$VENV/.seaco-test-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    "$PY" -m pip install -q --upgrade pip
    "$PY" -m pip install -q "torch==2.13.0"   # the CPU wheel here; never a CUDA download
    "$PY" -m pip install -q -e ".[test]"
    touch "$stamp"
fi

"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
"$VENV/bin/mypy"   # the package (engine/), config in pyproject.toml
# pytest exits 5 when it collects no test; that is a failure here too.
exec "$PY" -m pytest -q "$@"
