#!/usr/bin/env bash
# Checks systemd/dmsd.service: `systemd-analyze verify` passes (with the unit's
# /usr/bin/dmsd pointed at the built binary) and the offline security exposure
# is at most 2.5 (the target is 2.0 or lower; systemd-resolved ships at ~2.1).
set -euo pipefail
unit=$1
binary=$2
if ! command -v systemd-analyze >/dev/null; then
    echo "systemd-analyze not installed: skipped"
    exit 77
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
sed "s#/usr/bin/dmsd#$binary#g" "$unit" > "$dir/dmsd.service"
systemd-analyze verify "$dir/dmsd.service"
report=$(systemd-analyze security --offline=true "$dir/dmsd.service" 2>&1)
echo "$report" | tail -n 1
exposure=$(echo "$report" | sed -n 's/.*Overall exposure level for dmsd.service: \([0-9.]*\).*/\1/p')
if [[ -z $exposure ]]; then
    echo "no exposure level in systemd-analyze's report" >&2
    exit 1
fi
awk -v e="$exposure" 'BEGIN { exit !(e <= 2.5) }' || {
    echo "exposure $exposure is above 2.5" >&2
    exit 1
}
