#!/usr/bin/env bash
# The AWS emulator for the adapter tests: moto in server mode, on loopback, from a
# project-local virtualenv with every package pinned (infra/requirements-moto.txt).
#
#   infra/moto.sh install   create .venv/moto and install the pinned packages (idempotent)
#   infra/moto.sh start     start moto on a free 127.0.0.1 port; writes .local/moto.env
#                           (AWS_ENDPOINT_URL and dummy credentials) and prints the endpoint
#   infra/moto.sh stop      stop the server started by `start`
#   infra/moto.sh env       print the .local/moto.env of the running server
#
# Nothing here talks to AWS: moto answers every call itself, with dummy credentials.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv/moto
REQUIREMENTS=infra/requirements-moto.txt
STATE=.local
PIDFILE=$STATE/moto.pid
ENVFILE=$STATE/moto.env
LOGFILE=$STATE/moto.log
PYTHON=${PYTHON:-python3}

install() {
  local stamp=$VENV/.requirements.sha256
  local want
  want=$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)
  if [[ "${1:-}" != "--refresh" && -x $VENV/bin/moto_server && -f $stamp && "$(cat "$stamp")" == "$want" ]]; then
    echo "moto: $VENV is up to date"
    return
  fi
  if [[ "${1:-}" == "--refresh" ]]; then
    # Re-resolve from the moto pin alone and rewrite the freeze (to update the pins).
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "$(grep '^moto\[server\]==' "$REQUIREMENTS")"
    {
      sed -n '/^#/p' "$REQUIREMENTS"
      grep '^moto\[server\]==' "$REQUIREMENTS"
      "$VENV/bin/pip" freeze --disable-pip-version-check | grep -v '^moto=='
    } > "$REQUIREMENTS.new"
    mv "$REQUIREMENTS.new" "$REQUIREMENTS"
    want=$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)
  else
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    # --no-deps: the file pins the whole closure, so nothing unpinned sneaks in; `pip check`
    # then fails if a dependency is missing from the file.
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$REQUIREMENTS"
    "$VENV/bin/pip" check --disable-pip-version-check
  fi
  echo "$want" > "$stamp"
  echo "moto: installed $("$VENV/bin/pip" show moto 2>/dev/null | sed -n 's/^Version: //p') into $VENV"
}

running() {
  [[ -f $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

start() {
  if running; then
    echo "moto: already running ($(sed -n 's/^export AWS_ENDPOINT_URL=//p' "$ENVFILE"))"
    return
  fi
  [[ -x $VENV/bin/moto_server ]] || install
  mkdir -p "$STATE"
  local port
  # A free loopback port: bind port 0 and read what the kernel chose.
  port=$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
  # infra/moto_server.py: moto_server with DynamoDB requests serialised (see its docstring).
  "$VENV/bin/python" infra/moto_server.py -H 127.0.0.1 -p "$port" > "$LOGFILE" 2>&1 &
  echo $! > "$PIDFILE"
  local endpoint="http://127.0.0.1:$port"
  # Wait (at most 30 s) until it answers.
  for _ in $(seq 1 150); do
    if "$VENV/bin/python" -c "import urllib.request,sys; urllib.request.urlopen('$endpoint/moto-api/', timeout=1)" 2>/dev/null; then
      cat > "$ENVFILE" <<EOF
export AWS_ENDPOINT_URL=$endpoint
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_SESSION_TOKEN=testing
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
EOF
      echo "moto: listening on $endpoint (pid $(cat "$PIDFILE"), log $LOGFILE, env $ENVFILE)"
      return
    fi
    if ! running; then
      echo "moto: exited during start; log follows" >&2
      cat "$LOGFILE" >&2
      exit 1
    fi
    sleep 0.2
  done
  echo "moto: no answer on $endpoint after 30 s" >&2
  stop
  exit 1
}

stop() {
  if running; then
    local pid
    pid=$(cat "$PIDFILE")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    echo "moto: stopped (pid $pid)"
  fi
  rm -f "$PIDFILE" "$ENVFILE"
}

case "${1:-}" in
  install) install "${2:-}" ;;
  start) start ;;
  stop) stop ;;
  env) cat "$ENVFILE" ;;
  *) echo "usage: $0 install [--refresh] | start | stop | env" >&2; exit 2 ;;
esac
