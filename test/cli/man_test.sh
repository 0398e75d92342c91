#!/usr/bin/env bash
# The generated man page dmsd(8) documents what the program accepts: every
# subcommand of `dmsd --help` has its own subsection, and every long option of
# `dmsd SUB --help` is described in it (and --help once for all). Both pages render without a warning
# from groff, when groff is installed.
#   man_test.sh DMSD-BINARY MAN-DIR
set -uo pipefail
dmsd=$1
mandir=$2
failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

for page in dmsd.8 dmsd.yaml.5; do
    [[ -s $mandir/$page && -s $mandir/$page.gz ]] || fail "$mandir/$page(.gz) missing or empty"
done

# The roff source as plain text: no font changes, \- as -, \(aq as '.
plain=$(sed -e 's/\\f\[[A-Z]*\]//g' -e 's/\\f[BIRPC]//g' -e 's/\\-/-/g' -e "s/\\\\(aq/'/g" \
    "$mandir/dmsd.8")
# section NAME: the text of subsection NAME (.SS NAME up to the next .SS/.SH).
section() {
    awk -v name="$1" '/^\.S[SH] / { inside = ($2 == name); next } inside' <<<"$plain"
}

commands=$("$dmsd" --help | grep -o 'dmsd [a-z][a-z-]*' | awk '{print $2}' | sort -u)
[[ -n $commands ]] || fail "no subcommands in 'dmsd --help'"
for command in $commands; do
    text=$(section "$command")
    if [[ -z $text ]]; then
        fail "dmsd.8 has no subsection for '$command'"
        continue
    fi
    grep -q "^\.B\?dmsd $command\|^\*\*dmsd $command\|dmsd $command" <<<"$plain" ||
        fail "dmsd.8 SYNOPSIS does not show 'dmsd $command'"
    [[ $command == version ]] && continue
    # The options `dmsd SUB --help` declares ("[--x" in the usage line, "  --x"
    # or "  -x [ --x ]" in the option list); --help is described once for all.
    for option in $("$dmsd" "$command" --help | grep -oE '(^|\[) *--[a-z][a-z-]*' |
        grep -oE -e '--[a-z-]+' | grep -v -x -e --help | sort -u); do
        grep -q -e "$option\b" <<<"$text" || fail "dmsd.8: '$command $option' not described"
    done
done

grep -q -e '--help' <<<"$(section DESCRIPTION)" || fail "dmsd.8: --help not described"

if command -v groff >/dev/null; then
    for page in dmsd.8 dmsd.yaml.5; do
        warnings=$(groff -t -man -Tutf8 -ww -z "$mandir/$page" 2>&1)
        [[ -z $warnings ]] || fail "groff warns about $page: $warnings"
    done
else
    echo "groff not installed: rendering not checked"
fi

if ((failures)); then
    echo "$failures man page check(s) failed" >&2
    exit 1
fi
echo "man: all checks passed"
