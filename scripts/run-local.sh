#!/usr/bin/env bash
# `make run`: the agent and a local hub (SQLite) wired over loopback on the shipped defaults.
#
# Everything lives in var/run-local/ (the repository's own var/, never /etc): the hub's config,
# inventory, database and master key; the agent's config (the shipped config/sentinel.toml plus a
# drop-in with the webhook sink to the hub) and the terminal's enrolled secret. Prints the hub's
# URL and a first login, then runs the agent in the foreground; Ctrl-C stops both.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY="${PYTHON:-$ROOT/.venv/bin/python}"
RUN="$ROOT/var/run-local"
HUB_PORT="${HUB_PORT:-8780}"
TERMINAL="${TERMINAL:-$(hostname -s | tr -c 'A-Za-z0-9._\n-' '-')}"
mkdir -p "$RUN/hub" "$RUN/agent/conf.d"
chmod 0700 "$RUN" "$RUN/hub" "$RUN/agent"

cat > "$RUN/hub/inventory.toml" <<TOML
[head_office]
id = "HO"
name = "总行 Head office"

[[primary_branches]]
id = "dev"
name = "开发分行 Development primary branch"

[[branches]]
id = "0000-dev"
name = "本机支行 This machine"
primary = "dev"

[[terminals]]
name = "$TERMINAL"
branch = "0000-dev"
TOML

cat > "$RUN/hub/hub.toml" <<TOML
[hub]
listen = "127.0.0.1:$HUB_PORT"
state_dir = "$RUN/hub/state"
inventory = "$RUN/hub/inventory.toml"
public_url = "http://127.0.0.1:$HUB_PORT"
log_format = "json"

[web]
cookie_secure = false   # plain HTTP on loopback only; put the hub behind TLS anywhere else
TOML

# the agent: the shipped config as it is, its state under var/run-local, one drop-in for the hub
sed -e "s|^state_dir = .*|state_dir = \"$RUN/agent/state\"|" \
    -e "s|^# terminal_id = .*|terminal_id = \"$TERMINAL\"|" \
    "$ROOT/config/sentinel.toml" > "$RUN/agent/sentinel.toml"
[[ -d "$ROOT/config/rules.d" ]] && ln -sfn "$ROOT/config/rules.d" "$RUN/agent/rules.d"
[[ -d "$ROOT/config/checks.d" ]] && ln -sfn "$ROOT/config/checks.d" "$RUN/agent/checks.d"
cat > "$RUN/agent/conf.d/50-hub.toml" <<TOML
# written by scripts/run-local.sh: tickets go to the local hub, signed with the enrolled secret
[agent]
branch = "0000-dev"

[[sinks]]
name = "hub"
type = "webhook"
url = "http://127.0.0.1:$HUB_PORT/ingest/v1/tickets"
secret_file = "$RUN/agent/hub.secret"

[hub]                        # pull the actions people queue in the hub's pages (outbound only)
url = "http://127.0.0.1:$HUB_PORT"
secret_file = "$RUN/agent/hub.secret"
poll_interval = "5s"
TOML

hub() { "$PY" -m sentinel.hub --config "$RUN/hub/hub.toml" "$@"; }
hub migrate >/dev/null
if [[ ! -s "$RUN/agent/hub.secret" ]]; then
  hub enroll "$TERMINAL" --secret-file "$RUN/agent/hub.secret" --by "os:$(id -un)" 2>/dev/null
fi
login=""
if (umask 077; hub user add admin --display "Administrator" --role admin --unit HO --generate-password \
     > "$RUN/hub/first-login.new" 2>/dev/null); then
  mv "$RUN/hub/first-login.new" "$RUN/hub/first-login.txt"
  login=$(sed -n 's/^password: //p' "$RUN/hub/first-login.txt")
fi
rm -f "$RUN/hub/first-login.new"

hub serve >> "$RUN/hub/hub.log" 2>&1 &
HUB_PID=$!
trap 'kill "$HUB_PID" 2>/dev/null || true; wait "$HUB_PID" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  if "$PY" -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=1)" \
       "http://127.0.0.1:$HUB_PORT/readyz" 2>/dev/null; then break; fi
  kill -0 "$HUB_PID" 2>/dev/null || { echo "the hub did not start; see $RUN/hub/hub.log" >&2; exit 1; }
  sleep 0.2
done

echo "Sentinel hub:  http://127.0.0.1:$HUB_PORT/   (log: $RUN/hub/hub.log)"
if [[ -n "$login" ]]; then
  echo "First login:   admin / $login   (shown once; also in $RUN/hub/first-login.txt, 0600)"
else
  echo "First login:   admin (password as first printed: $RUN/hub/first-login.txt)"
fi
echo "Terminal:      $TERMINAL in branch 0000-dev, tickets signed to the hub; metrics on 127.0.0.1:9787"
echo "Ctrl-C stops the agent and the hub."
"$PY" -m sentinel run --config "$RUN/agent/sentinel.toml"
