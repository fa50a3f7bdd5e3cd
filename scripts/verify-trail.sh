#!/usr/bin/env bash
# Recompute a terminal's hash-chained trail without Sentinel: jq and sha256sum only.
#
#   sentinel hazards trail > trail.jsonl          # on the terminal (or a copy of its hazards.db)
#   scripts/verify-trail.sh trail.jsonl [CENTRAL]  # anywhere
#
# Each line of trail.jsonl is one link {seq, kind, prev_hash, hash, row}. For every link this
# checks that seq counts 1, 2, 3 ..., that prev_hash is the hash of the link before (64 zeros for
# the first), and that hash = sha256(prev_hash + "\n" + canonical row), the canonical row being
# `jq -cSa` (sorted keys, compact, ASCII escapes) — docs/hazards.md "The trail". A link whose row
# is null belongs to a pruned hazard: only its place in the chain is checked.
# CENTRAL (optional): lines "SEQ HASH" a central copy holds (the hub's tickets, Prometheus'
# sentinel_audit_chain_head_info); each must be in the trail with that hash.
# Exit 0 when everything holds, 1 naming the first row that does not.
set -euo pipefail
trail=${1:?usage: verify-trail.sh TRAIL.jsonl [CENTRAL]}
central=${2:-}
prev=$(printf '0%.0s' {1..64})
expected=1
declare -A hashes=()
while IFS= read -r line; do
  seq=$(jq -r .seq <<<"$line")
  hash=$(jq -r .hash <<<"$line")
  [[ $seq == "$expected" ]] || { echo "row $expected: missing (the next row is $seq)"; exit 1; }
  [[ $(jq -r .prev_hash <<<"$line") == "$prev" ]] || { echo "row $seq: prev_hash is not row $((seq - 1))'s hash"; exit 1; }
  if [[ $(jq -c .row <<<"$line") != null ]]; then
    row=$(jq -cSa .row <<<"$line")
    computed=$(printf '%s\n%s' "$prev" "$row" | sha256sum | cut -d' ' -f1)
    [[ $computed == "$hash" ]] || { echo "row $seq: its row does not hash to $hash"; exit 1; }
  fi
  hashes[$seq]=$hash
  prev=$hash
  expected=$((seq + 1))
done <"$trail"
if [[ -n $central ]]; then
  while read -r seq hash; do
    [[ -n ${seq:-} ]] || continue
    [[ ${hashes[$seq]:-} == "$hash" ]] || { echo "row $seq: the central copy holds $hash, the trail ${hashes[$seq]:-nothing}"; exit 1; }
  done <"$central"
fi
echo "trail intact: $((expected - 1)) rows, head $prev"
