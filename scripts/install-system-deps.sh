#!/usr/bin/env bash
# Installs the Debian packages Sentinel's end-to-end tests (and, with "bench", its benchmarks)
# need. Does nothing when they are present; says how to install them when it cannot.
set -euo pipefail

# command to look for, and the Debian package that provides it (same index)
commands=(promtool prometheus prometheus-alertmanager openssl chromium sqlite3 jq)
packages=(prometheus prometheus prometheus-alertmanager openssl chromium sqlite3 jq)
if [[ "${1:-}" == "bench" ]]; then
  packages+=(aide prometheus-node-exporter)
  commands+=(aide prometheus-node-exporter)
fi

missing=()
for i in "${!commands[@]}"; do
  if ! command -v "${commands[$i]}" >/dev/null 2>&1 && [[ " ${missing[*]:-} " != *" ${packages[$i]} "* ]]; then
    missing+=("${packages[$i]}")
  fi
done
if ! command -v systemd-analyze >/dev/null 2>&1; then missing+=(systemd); fi
# the hub's pages in Chinese: the browser tests and docs/img screenshots need CJK glyphs
if [[ ! -d /usr/share/fonts/opentype/noto ]] || ! ls /usr/share/fonts/opentype/noto/NotoSansCJK* >/dev/null 2>&1; then
  missing+=(fonts-noto-cjk)
fi
# GNU time (bench_inventory's peak RSS); `command -v time` finds the shell keyword, so test the file
if [[ "${1:-}" == "bench" && ! -x /usr/bin/time ]]; then missing+=(time); fi
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Package scripts must not start the services they ship; the tests start their own.
  policy=/usr/sbin/policy-rc.d
  created_policy=0
  if [[ ! -e $policy ]]; then printf '#!/bin/sh\nexit 101\n' > $policy; chmod +x $policy; created_policy=1; fi
  trap '[[ $created_policy -eq 1 ]] && rm -f $policy' EXIT
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "note: end-to-end tests need: ${missing[*]}" >&2
  echo "      install them with: sudo apt-get install ${missing[*]}" >&2
  echo "      (they are skipped until then, except under CI=true where they fail)" >&2
fi
