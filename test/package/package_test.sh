#!/usr/bin/env bash
# Builds the .deb with CPack from a built tree and inspects it with dpkg-deb:
# the binary is stripped and its debug information is in the dbgsym package
# (same build id); the copyright file, man pages, bash completion and example
# drop-ins are in place; the control fields name the GStreamer packages; the
# maintainer scripts parse (sh -n) and, run against a scratch root with the
# system tools replaced by recorders, remove and purge do what
# docs/operations.md ("The package") says.
#   package_test.sh BUILD-DIR
set -uo pipefail
build=$1
for tool in cpack dpkg-deb readelf; do
    if ! command -v "$tool" >/dev/null; then
        echo "$tool not installed: skipped"
        exit 77
    fi
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

if ! cpack --config "$build/CPackConfig.cmake" -B "$work/out" >"$work/cpack.log" 2>&1; then
    cat "$work/cpack.log" >&2
    echo "FAIL: cpack" >&2
    exit 1
fi
deb=$(ls "$work"/out/dmsd_*.deb 2>/dev/null | head -1)
ddeb=$(ls "$work"/out/dmsd-dbgsym_*.ddeb 2>/dev/null | head -1)
[[ -n $deb ]] || { echo "FAIL: no dmsd_*.deb in $(ls "$work/out")" >&2; exit 1; }
[[ -n $ddeb ]] || fail "no dmsd-dbgsym_*.ddeb beside $(basename "$deb")"
echo "packages: $(basename "$deb") $(du -k "$deb" | cut -f1) kB;" \
    "$(basename "${ddeb:-none}") $( [[ -n $ddeb ]] && du -k "$ddeb" | cut -f1) kB"

dpkg-deb -x "$deb" "$work/root"
dpkg-deb -e "$deb" "$work/control"

# The binary: stripped, linked to its debug file by build id.
bin=$work/root/usr/bin/dmsd
if [[ ! -x $bin ]]; then
    fail "no executable usr/bin/dmsd"
else
    sections=$(readelf -S -W "$bin")
    grep -q '\.debug_info' <<<"$sections" && fail "usr/bin/dmsd has .debug_info (not stripped)"
    grep -q '\.symtab' <<<"$sections" && fail "usr/bin/dmsd has a .symtab (not stripped)"
    build_id=$(readelf -n "$bin" | sed -n 's/.*Build ID: \([0-9a-f]*\).*/\1/p')
    [[ -n $build_id ]] || fail "usr/bin/dmsd has no build id"
fi
if [[ -n $ddeb && -n ${build_id:-} ]]; then
    dpkg-deb -x "$ddeb" "$work/dbg"
    debug=$work/dbg/usr/lib/debug/.build-id/${build_id:0:2}/${build_id:2}.debug
    if [[ ! -f $debug ]]; then
        fail "the dbgsym package has no .build-id/${build_id:0:2}/${build_id:2}.debug"
    else
        # Not `readelf | grep -q`: with pipefail, grep's early exit can make
        # readelf die of SIGPIPE and the pipeline fail although it matched.
        debug_sections=$(readelf -S -W "$debug" 2>/dev/null)
        grep -q '\.debug_info' <<<"$debug_sections" || fail "$debug has no .debug_info"
    fi
    grep -q '^dmsd (= ' <<<"$(dpkg-deb -f "$ddeb" Depends)" || fail "dbgsym does not depend on dmsd (= version)"
fi

# Files a Debian package of dmsd must carry.
for f in usr/share/doc/dmsd/copyright \
    usr/share/man/man8/dmsd.8.gz usr/share/man/man5/dmsd.yaml.5.gz \
    usr/share/bash-completion/completions/dmsd \
    usr/share/doc/dmsd/examples/systemd/jetson-camera.conf \
    usr/share/doc/dmsd/examples/systemd/remote-model-server.conf \
    etc/dmsd/dmsd.yaml usr/share/dbus-1/system.d/org.dmsd.DriverMonitor1.conf; do
    [[ -s $work/root/$f ]] || fail "missing or empty: /$f"
done
[[ -e $work/root/usr/share/doc/dmsd/man ]] && fail "docs/man (the man page sources) is shipped"
for page in usr/share/man/man8/dmsd.8.gz usr/share/man/man5/dmsd.yaml.5.gz; do
    [[ -f $work/root/$page ]] && ! gzip -t "$work/root/$page" && fail "/$page is not gzip"
done

# Copyright: DEP-5 machine-readable, the code under Apache-2.0, and the place
# where model files will be listed.
copyright=$work/root/usr/share/doc/dmsd/copyright
if [[ -f $copyright ]]; then
    head -1 "$copyright" | grep -q '^Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/' ||
        fail "copyright: first line is not the DEP-5 Format: field"
    grep -q '^Files: \*$' "$copyright" || fail "copyright: no 'Files: *' paragraph"
    grep -q '^License: Apache-2.0$' "$copyright" || fail "copyright: no 'License: Apache-2.0'"
    grep -q 'Models and data' "$copyright" || fail "copyright: no 'Models and data' statement"
fi

# Control fields.
control=$work/control/control
grep -q '^Depends:.*gstreamer1.0-plugins-base' "$control" || fail "Depends lacks gstreamer1.0-plugins-base"
grep -q '^Depends:.*gstreamer1.0-plugins-good' "$control" || fail "Depends lacks gstreamer1.0-plugins-good"
grep -q '^Depends:.*libdlib-data' "$control" || fail "Depends lacks libdlib-data (the vision's landmark model)"
grep -q '^Depends:.*libgstreamer1.0-0' "$control" || fail "Depends lacks the shared libraries (shlibdeps)"
grep -q '^Depends:.*libssl3' "$control" || fail "Depends lacks libssl3 (https to the model server; shlibdeps)"
grep -q '^Recommends:.*gstreamer1.0-libav' "$control" || fail "Recommends lacks gstreamer1.0-libav"
grep -qx '/etc/dmsd/dmsd.yaml' "$work/control/conffiles" || fail "conffiles lacks /etc/dmsd/dmsd.yaml"

# Maintainer scripts: present, executable, parse with sh -n.
for script in postinst prerm postrm; do
    s=$work/control/$script
    if [[ ! -x $s ]]; then
        fail "maintainer script $script missing or not executable"
    elif ! sh -n "$s"; then
        fail "maintainer script $script does not parse (sh -n)"
    fi
done

# postinst/postrm run against a scratch root: DPKG_ROOT (as dpkg --root sets
# it) and recorders for deb-systemd-helper, systemctl, journalctl and
# systemd-sysusers first on PATH, so nothing of this machine is touched.
stubs=$work/stubs
mkdir -p "$stubs"
for tool in deb-systemd-helper systemctl journalctl systemd-sysusers; do
    printf '#!/bin/sh\necho "%s $*" >>"%s"\nexit 0\n' "$tool" "$work/calls" >"$stubs/$tool"
    chmod +x "$stubs/$tool"
done
scratch=$work/scratch
mkdir -p "$scratch/var/lib/dmsd/snapshots/00000001-x-DROWSINESS" "$scratch/etc/dmsd/conf.d"
touch "$scratch/var/lib/dmsd/last-good.yaml" "$scratch/etc/dmsd/conf.d/50-fleet.yaml"
run() { # run SCRIPT ARGS...: the calls it made, one per line
    : >"$work/calls"
    if ! PATH=$stubs:$PATH DPKG_ROOT=$scratch sh -e "$work/control/$1" "${@:2}"; then
        fail "$1 $*: exit status not 0"
    fi
    cat "$work/calls"
}
calls=$(run postinst configure)
grep -q '^deb-systemd-helper enable dmsd.service' <<<"$calls" ||
    fail "postinst configure does not enable dmsd.service (calls: $(echo $calls))"
calls=$(run postrm remove)
grep -q '^deb-systemd-helper mask dmsd.service' <<<"$calls" || fail "postrm remove does not mask"
[[ -f $scratch/var/lib/dmsd/last-good.yaml ]] || fail "postrm remove deleted /var/lib/dmsd"
calls=$(run postrm purge)
grep -q '^deb-systemd-helper purge dmsd.service' <<<"$calls" ||
    fail "postrm purge does not purge the enable symlink (calls: $(echo $calls))"
grep -q '^deb-systemd-helper unmask dmsd.service' <<<"$calls" || fail "postrm purge does not unmask"
[[ -e $scratch/var/lib/dmsd ]] && fail "postrm purge left /var/lib/dmsd"
[[ -f $scratch/etc/dmsd/conf.d/50-fleet.yaml ]] || fail "postrm purge deleted a drop-in it did not write"

if ((failures)); then
    echo "$failures package check(s) failed" >&2
    exit 1
fi
echo "package: all checks passed"
