#!/usr/bin/env bash
# Checks systemd/dmsd.service alone and with each example drop-in of
# systemd/examples/ (and with all of them): `systemd-analyze verify` passes
# (with the unit's /usr/bin/dmsd pointed at the built binary), the drop-in is
# in effect, the offline security exposure is at most 2.5 (the target is 2.0
# or lower; systemd-resolved ships at ~2.1), and it is the figure
# docs/operations.md states ("Unit drop-ins").
#   unit_file_test.sh UNIT BINARY DROP-IN-DIR OPERATIONS.md
set -euo pipefail
unit=$1
binary=$2
dropins=$3
doc=$4
if ! command -v systemd-analyze >/dev/null; then
    echo "systemd-analyze not installed: skipped"
    exit 77
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
sed "s#/usr/bin/dmsd#$binary#g" "$unit" >"$dir/dmsd.service"
failures=0

# check NAME DROP-IN... : the unit with these drop-ins in dmsd.service.d/.
# Prints the exposure; the security report is left in $dir/report.
check() {
    local name=$1
    shift
    rm -rf "$dir/dmsd.service.d"
    mkdir "$dir/dmsd.service.d"
    local d
    for d in "$@"; do
        cp "$dropins/$d" "$dir/dmsd.service.d/"
    done
    if ! systemd-analyze verify "$dir/dmsd.service" >"$dir/verify" 2>&1 || [[ -s $dir/verify ]]; then
        echo "FAIL: $name: systemd-analyze verify:" >&2
        cat "$dir/verify" >&2
        failures=$((failures + 1))
    fi
    systemd-analyze security --offline=true "$dir/dmsd.service" >"$dir/report" 2>&1 || true
    local exposure
    exposure=$(sed -n 's/.*Overall exposure level for dmsd.service: \([0-9.]*\).*/\1/p' \
        "$dir/report")
    if [[ -z $exposure ]]; then
        echo "FAIL: $name: no exposure level in systemd-analyze's report" >&2
        failures=$((failures + 1))
        return
    fi
    echo "$name: exposure $exposure"
    if ! awk -v e="$exposure" 'BEGIN { exit !(e <= 2.5) }'; then
        echo "FAIL: $name: exposure $exposure is above 2.5" >&2
        failures=$((failures + 1))
    fi
    # The figure in docs/operations.md's table: | `NAME` ... | EXPOSURE |
    local documented
    documented=$(grep -F "| $name |" "$doc" | awk -F'|' '{ gsub(/ /, "", $3); print $3 }')
    if [[ $documented != "$exposure" ]]; then
        echo "FAIL: $name: docs/operations.md says '${documented:-nothing}', measured $exposure" >&2
        failures=$((failures + 1))
    fi
}

# in_effect NAME PATTERN: the last security report has a line matching PATTERN.
in_effect() {
    if ! grep -q -E "$2" "$dir/report"; then
        echo "FAIL: $1: the drop-in is not in effect (no line matching '$2'):" >&2
        grep -E 'DeviceAllow=|IPAddressDeny=|PrivateTmp=' "$dir/report" >&2 || true
        failures=$((failures + 1))
    fi
}

check "dmsd.service"
in_effect "dmsd.service" 'DeviceAllow=.*char-video4linux:rw'
in_effect "dmsd.service" 'IPAddressDeny=.*only localhost'

check "+ jetson-camera.conf" jetson-camera.conf
in_effect "jetson-camera.conf" 'DeviceAllow=.*/dev/nvmap:rw.*char-nvhost\*:rw'
in_effect "jetson-camera.conf" 'PrivateTmp=.*no access to other software'

check "+ remote-model-server.conf" remote-model-server.conf
in_effect "remote-model-server.conf" 'IPAddressDeny=.*non-localhost'

all=()
for f in "$dropins"/*.conf; do all+=("$(basename "$f")"); done
((${#all[@]} == 2)) || {
    echo "FAIL: expected the 2 drop-ins above in $dropins, found: ${all[*]}" >&2
    failures=$((failures + 1))
}
check "+ both" "${all[@]}"

if ((failures)); then
    echo "$failures unit check(s) failed" >&2
    exit 1
fi
