#!/usr/bin/env bash
# Install (or uninstall) Sentinel as a hardened systemd service. `install.sh --help` for usage.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: deploy/install.sh [OPTIONS]

Install or upgrade Sentinel on this machine: the system user `sentinel`, the code in its own
virtualenv /opt/sentinel/venv, the config in /etc/sentinel (never overwritten), state in
/var/lib/sentinel, and the hardened unit sentinel.service (enabled and started).

Options:
  --root DIR       stage the installation under DIR for packaging (DESTDIR): every file goes
                   below DIR while every path written into it (venv shebangs, the unit,
                   conf.d/00-install.toml) is the final one (/opt/sentinel, /var/lib/sentinel).
                   Touches nothing outside DIR: no user, no chown, no systemctl, no pip cache.
                   Copy DIR's tree to / (or package it) and run the printed post-install steps.
  --no-systemctl   install on this machine but do not run systemctl (no daemon-reload,
                   enable or start); prints the commands to run instead
  --no-user        do not create the `sentinel` system user (an image that brings its own)
  --python PATH    the Python (3.11+) that builds the virtualenv (default: python3, or $PYTHON)
  --net-admin auto|yes|no
                   grant CAP_NET_ADMIN for exec capture (auto: on kernels before 6.6, which
                   need it for the proc connector)
  --units-only     install only the unit and its drop-ins (no user, code, config or systemctl)
  --uninstall      stop and remove the service and the code; keep config and state
  --purge          with --uninstall: also remove config, state, logs and the user
  -h, --help       print this help and exit

Never overwrites an existing config, rule, check or secret file.

Examples:
  sudo deploy/install.sh                          # install or upgrade, enable and start
  sudo deploy/install.sh --uninstall --purge      # remove everything
  deploy/install.sh --root "$PWD/pkgroot"         # stage a tree for a .deb/.rpm
USAGE
}

ROOT=""
SYSTEMCTL=1
CREATE_USER=1
UNINSTALL=0
PURGE=0
PYTHON="${PYTHON:-python3}"
NET_ADMIN=auto
UNITS_ONLY=0
SOURCE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

while [[ $# -gt 0 ]]; do
  case "$1" in
    --root)
      [[ $# -ge 2 && -n "$2" ]] || { echo "install.sh: --root needs a directory (see --help)" >&2; exit 2; }
      ROOT="$(mkdir -p "$2" && cd "$2" && pwd)"; CREATE_USER=0; SYSTEMCTL=0; shift 2 ;;
    --no-systemctl) SYSTEMCTL=0; shift ;;
    --no-user) CREATE_USER=0; shift ;;
    --uninstall) UNINSTALL=1; shift ;;
    --purge) PURGE=1; shift ;;
    --python)
      [[ $# -ge 2 ]] || { echo "install.sh: --python needs a path (see --help)" >&2; exit 2; }
      PYTHON="$2"; shift 2 ;;
    --net-admin)
      [[ $# -ge 2 ]] || { echo "install.sh: --net-admin needs auto, yes or no (see --help)" >&2; exit 2; }
      NET_ADMIN="$2"; shift 2 ;;
    --units-only) UNITS_ONLY=1; SYSTEMCTL=0; CREATE_USER=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [[ -n "$ROOT" && "$ROOT" == "/" ]]; then ROOT=""; fi  # --root / is a plain install
if [[ -n "$ROOT" ]]; then
  # Staged (DESTDIR): pip's cache and every temporary build directory stay below ROOT.
  STAGE_TMP="$ROOT/.install-tmp"
  mkdir -p "$STAGE_TMP"
  trap 'rm -rf "$STAGE_TMP"' EXIT
  export TMPDIR="$STAGE_TMP" PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
fi

OPT="$ROOT/opt/sentinel"
ETC="$ROOT/etc/sentinel"
STATE="$ROOT/var/lib/sentinel"
LOGS="$ROOT/var/log/sentinel"
UNIT="$ROOT/etc/systemd/system/sentinel.service"
DROPINS="$ROOT/etc/systemd/system/sentinel.service.d"
NET_ADMIN_DROPIN=exec-capture-cap-net-admin.conf
USER_NAME=sentinel

say() { echo "sentinel-install: $*"; }
owner() {  # chown only when the account exists (not under --root)
  if [[ $CREATE_USER -eq 1 ]] && id "$USER_NAME" >/dev/null 2>&1; then chown "$@"; fi
}

if [[ $UNINSTALL -eq 1 ]]; then
  if [[ $SYSTEMCTL -eq 1 ]]; then
    systemctl disable --now sentinel.service 2>/dev/null || true
  fi
  rm -f "$UNIT" "$DROPINS/$NET_ADMIN_DROPIN"
  rmdir "$DROPINS" 2>/dev/null || true
  [[ $SYSTEMCTL -eq 1 ]] && systemctl daemon-reload || true
  rm -rf "$OPT"
  if [[ $PURGE -eq 1 ]]; then
    rm -rf "$ETC" "$STATE" "$LOGS" "$ROOT/var/lib/sentinel-drill"
    if [[ $CREATE_USER -eq 1 ]] && id "$USER_NAME" >/dev/null 2>&1; then userdel "$USER_NAME"; fi
    say "removed Sentinel, its config, state and logs"
  else
    say "removed Sentinel; kept $ETC and $STATE (use --purge to remove them)"
  fi
  exit 0
fi

kernel_before_6_6() {  # the proc connector accepts unprivileged listeners from Linux 6.6
  local release major minor
  release="${SENTINEL_KERNEL_RELEASE:-$(uname -r)}"
  major="${release%%.*}"
  minor="${release#*.}"
  minor="${minor%%[!0-9]*}"
  (( major < 6 || (major == 6 && ${minor:-0} < 6) ))
}

install_units() {
  install -d -m 0755 "$(dirname "$UNIT")"
  install -m 0644 "$SOURCE/deploy/systemd/sentinel.service" "$UNIT"
  local want=0
  case "$NET_ADMIN" in
    yes) want=1 ;;
    no) want=0 ;;
    auto) if kernel_before_6_6; then want=1; fi ;;
    *) echo "install.sh: --net-admin takes auto, yes or no" >&2; exit 2 ;;
  esac
  if [[ $want -eq 1 ]]; then
    install -d -m 0755 "$DROPINS"
    install -m 0644 "$SOURCE/deploy/systemd/$NET_ADMIN_DROPIN" "$DROPINS/$NET_ADMIN_DROPIN"
    say "granted CAP_NET_ADMIN for exec capture ($DROPINS/$NET_ADMIN_DROPIN)"
  else
    rm -f "$DROPINS/$NET_ADMIN_DROPIN"
    rmdir "$DROPINS" 2>/dev/null || true
  fi
}

if [[ $UNITS_ONLY -eq 1 ]]; then
  install_units
  exit 0
fi

if [[ $CREATE_USER -eq 1 ]] && ! id "$USER_NAME" >/dev/null 2>&1; then
  useradd --system --no-create-home --home-dir /var/lib/sentinel --shell /usr/sbin/nologin \
    --comment "Sentinel monitoring agent" "$USER_NAME"
  say "created system user $USER_NAME"
fi

# Code: its own virtual environment, replaced as a whole on upgrade.
say "installing into $OPT/venv"
mkdir -p "$OPT"
rm -rf "$OPT/venv"  # venvs are not relocatable: rebuilt in place on every upgrade
"$PYTHON" -m venv "$OPT/venv"
if [[ -n "$ROOT" ]]; then
  # Staged: nothing compiled with the staging path in it, then every path the venv records
  # (script shebangs, activate scripts, pyvenv.cfg) made the final /opt/sentinel/venv.
  "$OPT/venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-compile "$SOURCE"
  grep -rlIF --null "$OPT/venv" "$OPT/venv/bin" "$OPT/venv/pyvenv.cfg" \
    | xargs -0r sed -i "s|$OPT/venv|/opt/sentinel/venv|g"
  "$OPT/venv/bin/python" -m compileall -q -f -s "$ROOT" -p / "$OPT/venv/lib" >/dev/null
else
  "$OPT/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$SOURCE"
fi
rm -rf "$OPT/docs"
cp -r "$SOURCE/docs" "$OPT/docs"
chmod -R go-w "$OPT"

# Directories with tight permissions.
install -d -m 0750 "$ETC" "$ETC/conf.d" "$ETC/rules.d" "$ETC/checks.d" "$ETC/changes.d"  # changes.d: change management's windows
install -d -m 0700 "$STATE" "$LOGS" "$ROOT/var/lib/sentinel-drill"
owner "$USER_NAME:$USER_NAME" "$STATE" "$LOGS" "$ROOT/var/lib/sentinel-drill"  # the agent writes drills there
owner "root:$USER_NAME" "$ETC" "$ETC/conf.d" "$ETC/rules.d" "$ETC/checks.d" "$ETC/changes.d"

copy_once() {  # source destination mode: never overwrite what the branch has
  if [[ -e "$2" ]]; then
    say "kept existing $2"
  else
    install -m "$3" "$1" "$2"
    owner "root:$USER_NAME" "$2"
  fi
}
copy_once "$SOURCE/config/sentinel.toml" "$ETC/sentinel.toml" 0640
for f in "$SOURCE"/config/rules.d/*.toml; do copy_once "$f" "$ETC/rules.d/$(basename "$f")" 0640; done
for f in "$SOURCE"/config/checks.d/*.toml; do copy_once "$f" "$ETC/checks.d/$(basename "$f")" 0640; done
if [[ ! -e "$ETC/conf.d/00-install.toml" ]]; then
  printf '# Written by install.sh: where the installed agent keeps its state.\n[agent]\nstate_dir = "/var/lib/sentinel"\n\n[integrity]\ndrill_dir = "/var/lib/sentinel-drill"\n' \
    > "$ETC/conf.d/00-install.toml"
  chmod 0640 "$ETC/conf.d/00-install.toml"
  owner "root:$USER_NAME" "$ETC/conf.d/00-install.toml"
fi

# The webhook signing secret (Standard Webhooks form): readable by the agent only.
if [[ ! -e "$ETC/webhook.secret" ]]; then
  (umask 077; printf 'whsec_%s\n' "$(head -c 32 /dev/urandom | base64 -w0)" > "$ETC/webhook.secret")
  owner "root:$USER_NAME" "$ETC/webhook.secret"
  chmod 0640 "$ETC/webhook.secret"
  say "created $ETC/webhook.secret (give it to the ticket receiver)"
fi

install_units

if [[ -n "$ROOT" ]]; then
  say "staged under $ROOT; after copying the tree to /, as root:"
  say "  useradd --system --no-create-home --home-dir /var/lib/sentinel --shell /usr/sbin/nologin sentinel"
  say "  chown sentinel:sentinel /var/lib/sentinel /var/log/sentinel /var/lib/sentinel-drill"
  say "  chown -R root:sentinel /etc/sentinel"
  say "  systemctl daemon-reload && systemctl enable --now sentinel.service"
elif [[ $SYSTEMCTL -eq 1 ]]; then
  systemctl daemon-reload
  systemctl enable --now sentinel.service
  say "enabled and started sentinel.service"
else
  say "installed; start it with: systemctl daemon-reload && systemctl enable --now sentinel.service"
fi
