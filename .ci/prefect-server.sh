#!/usr/bin/env bash
# A local Prefect server for CI and for trying the deployments by hand.
#   .ci/prefect-server.sh start   # background server on 127.0.0.1:$PORT, waits until healthy
#   .ci/prefect-server.sh health  # exit 0 when /api/health answers true
#   .ci/prefect-server.sh stop    # SIGTERM, wait, then SIGKILL if it is still there
# PREFECT_HOME (default .prefect-server in the repo) keeps its database, pid file and log.
# Then: export PREFECT_API_URL=http://127.0.0.1:$PORT/api
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${PREFECT_SERVER_PORT:-4200}"
export PREFECT_HOME="${PREFECT_HOME:-$PWD/.prefect-server}"
export PREFECT_SERVER_ANALYTICS_ENABLED=false
PREFECT="${PREFECT:-$PWD/.venv/bin/prefect}"
PIDFILE="$PREFECT_HOME/server.pid"
LOG="$PREFECT_HOME/server.log"
URL="http://127.0.0.1:$PORT/api"

healthy() {
    [ "$(curl -fsS --max-time 2 "$URL/health" 2>/dev/null)" = "true" ]
}

case "${1:-}" in
start)
    mkdir -p "$PREFECT_HOME"
    if healthy; then echo "already running: $URL"; exit 0; fi
    # setsid: its own process group, so stop can signal the server and its children together.
    setsid "$PREFECT" server start --host 127.0.0.1 --port "$PORT" --analytics-off \
        >"$LOG" 2>&1 < /dev/null &
    echo $! > "$PIDFILE"
    for _ in $(seq 1 120); do   # ~10 s on a new database; give a loaded CI machine 60 s
        if healthy; then echo "healthy: $URL (PREFECT_HOME=$PREFECT_HOME)"; exit 0; fi
        if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
            echo "server exited; last log lines:" >&2; tail -20 "$LOG" >&2; exit 1
        fi
        sleep 0.5
    done
    echo "server not healthy after 60 s; last log lines:" >&2; tail -20 "$LOG" >&2
    "$0" stop; exit 1
    ;;
health)
    healthy && echo "healthy: $URL" || { echo "not answering: $URL" >&2; exit 1; }
    ;;
stop)
    [ -f "$PIDFILE" ] || { echo "no pid file: not started by this script"; exit 0; }
    pid="$(cat "$PIDFILE")"
    # SIGTERM, not SIGINT: a background job of a non-interactive shell ignores SIGINT.
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do
        kill -0 "$pid" 2>/dev/null || { rm -f "$PIDFILE"; echo "stopped"; exit 0; }
        sleep 0.25
    done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    rm -f "$PIDFILE"; echo "killed after 10 s"
    ;;
*)
    echo "usage: $0 start|health|stop" >&2; exit 2
    ;;
esac
