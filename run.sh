#!/usr/bin/env bash
# One command runs the service (the original article's run.sh habit):
#
#   ./run.sh            create/update .venv if needed, stop a stale instance, check the log
#                       directory, read .env, start web + worker in the background with logs in
#                       <data>/logs/app.log, wait for /health and print the URL and the result
#   ./run.sh stop       stop the running instance (its job finishes or goes back to the queue)
#   ./run.sh status     print the health report and job counts
#   ./run.sh foreground run in the foreground (what the systemd unit uses)
#   ./run.sh install-systemd   install and start deploy/seaco-asr.service (restart on failure, start at boot)
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"
ROOT=$PWD
VENV=${SEACO_VENV:-$ROOT/.venv}
PY="$VENV/bin/python"

ensure_env() {
    if [ ! -x "$PY" ]; then
        echo "creating $VENV"
        python3 -m venv "$VENV"
    fi
    local stamp="$VENV/.seaco-installed"
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
        echo "installing dependencies into $VENV (a few minutes the first time)"
        "$PY" -m pip install -q --upgrade pip
        # The pinned torch first: on a GPU machine install the CUDA build of torch 2.13.0
        # into the venv before running this script and this line keeps it.
        "$PY" -m pip install -q "torch==2.13.0"
        "$PY" -m pip install -q -e .
        touch "$stamp"
    fi
}

setting() {  # the effective value of one setting (environment > .env > default)
    "$PY" -c "from engine.config import load_settings; print(load_settings().$1)"
}

wait_for_health() {
    local host port url
    host=$(setting host); port=$(setting port)
    case "$host" in 0.0.0.0|::|"") host=127.0.0.1 ;; esac
    url="http://$host:$port"
    "$PY" - "$url" <<'PYEOF'
import json, sys, time, urllib.error, urllib.request
url = sys.argv[1]
deadline = time.monotonic() + 300


def settled(report):
    """Wait past start-up: until the models are loaded or have failed to load."""
    detail = report.get("checks", {}).get("model", {}).get("detail", "")
    return report.get("status") == "ok" or detail.startswith("Models could not be loaded")


report = {}
while time.monotonic() < deadline:
    try:
        with urllib.request.urlopen(url + "/health", timeout=5) as r:
            report = json.load(r)
    except urllib.error.HTTPError as e:  # 503 still carries the report
        report = json.load(e)
    except OSError:
        pass
    if settled(report):
        break
    time.sleep(1)
if not report:
    sys.exit(f"no answer from {url}/health after 300 s; see the log")
print(f"dashboard: {url}")
print(f"health:    {report['status']}")
for reason in report.get("reasons", []):
    print(f"  - {reason}")
PYEOF
}

cmd=${1:-start}
case "$cmd" in
    start|restart)
        ensure_env
        "$PY" -m engine.cli stop >/dev/null || true
        data=$(setting data_dir)
        mkdir -p "$data/logs"
        touch "$data/logs/app.log" 2>/dev/null || { echo "log directory $data/logs is not writable" >&2; exit 1; }
        setsid nohup "$PY" -m engine.cli serve >>"$data/logs/console.log" 2>&1 </dev/null &
        echo "started (pid $!); logs: $data/logs/app.log"
        wait_for_health
        ;;
    foreground)
        ensure_env
        exec "$PY" -m engine.cli serve
        ;;
    stop)
        "$PY" -m engine.cli stop
        ;;
    status)
        "$PY" -m engine.cli status
        ;;
    install-systemd)
        ensure_env
        unit=/etc/systemd/system/seaco-asr.service
        sed -e "s#@ROOT@#$ROOT#g" -e "s#@USER@#$(id -un)#g" deploy/seaco-asr.service >"$unit"
        systemctl daemon-reload
        systemctl enable --now seaco-asr.service
        echo "installed $unit (restarts on failure, starts at boot)"
        ;;
    *)
        echo "usage: $0 [start|stop|restart|status|foreground|install-systemd]" >&2
        exit 2
        ;;
esac
