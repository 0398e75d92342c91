#!/usr/bin/env bash
# The bash completion (cli/dmsd.bash-completion), loaded as an interactive
# shell loads it (bash-completion first), completes what the program accepts:
# the subcommands of `dmsd --help` and the options of each `dmsd SUB --help`,
# no more and no less, plus the values and files of a few options.
#   completion_test.sh DMSD-BINARY COMPLETION-FILE
set -uo pipefail
dmsd=$1
completion=$2
bc=/usr/share/bash-completion/bash_completion
if [[ ! -r $bc ]]; then
    echo "bash-completion not installed (scripts/install-deps): skipped"
    exit 77
fi
# bash_completion is not written for `set -u`.
# shellcheck source=/dev/null
source "$bc"
# shellcheck source=/dev/null
source "$completion"

failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# complete LINE: the completions bash would offer with the cursor at the end
# of LINE, one per line, sorted. LINE is split into words as readline splits
# it: at blanks, with each of COMP_WORDBREAKS' '=' and ':' a word of its own.
complete() {
    local line=$1 word="" c i
    COMP_WORDS=()
    for ((i = 0; i < ${#line}; i++)); do
        c=${line:i:1}
        case $c in
        ' ')
            [[ -n $word ]] && COMP_WORDS+=("$word")
            word=""
            ;;
        '=' | ':')
            [[ -n $word ]] && COMP_WORDS+=("$word")
            COMP_WORDS+=("$c")
            word=""
            ;;
        *) word+=$c ;;
        esac
    done
    COMP_WORDS+=("$word") # the word under the cursor, maybe empty
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMP_LINE=$line
    COMP_POINT=${#line}
    COMPREPLY=()
    local prev=""
    ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
    _dmsd dmsd "${COMP_WORDS[COMP_CWORD]}" "$prev"
    if ((${#COMPREPLY[@]})); then
        printf '%s\n' "${COMPREPLY[@]}" | sort -u
    fi
}

# expect LINE WORD...: the completions of LINE are exactly these words.
expect() {
    local line=$1
    shift
    local got want
    got=$(complete "$line")
    want=$( (($#)) && printf '%s\n' "$@" | sort -u)
    if [[ $got != "$want" ]]; then
        fail "'$line<TAB>': expected [$(echo $want)], got [$(echo $got)]"
    fi
}

# The program's own lists.
commands=$("$dmsd" --help | grep -o 'dmsd [a-z][a-z-]*' | awk '{print $2}' | sort -u)
[[ -n $commands ]] || fail "no subcommands in 'dmsd --help'"
options_of() { # the long options `dmsd $1 --help` declares ("[--x" in the
    # usage line, "  --x" or "  -x [ --x ]" in the option list), and --help
    { "$dmsd" "$1" --help | grep -oE '(^|\[) *--[a-z][a-z-]*' | grep -oE -e '--[a-z-]+'
        echo --help; } | sort -u
}

# Subcommands: the program's, plus `help` (an alias of --help).
expect "dmsd an" analyze
expect "dmsd check" check-config
expect "dmsd " $commands help
expect "dmsd -" --help --version
expect "dmsd nosuchcommand --" # nothing for an unknown subcommand

# Options: exactly those each subcommand accepts.
for command in $commands; do
    [[ $command == version ]] && continue
    expect "dmsd $command --" $(options_of "$command")
done
expect "dmsd analyze --re" --realtime
expect "dmsd analyze --no" --no-pipeline
expect "dmsd check-config --pr" --print
expect "dmsd check-config -- --" # after --, operands only (no file starts with --)

# Values.
expect "dmsd analyze --progress " auto bar plain none
expect "dmsd analyze --progress p" plain
expect "dmsd analyze --progress=b" bar
expect "dmsd sample --layout m" mosaic
expect "dmsd sample --source " v4l2: file: test: pipeline:
expect "dmsd analyze --jobs " # a number: nothing offered
# After a ':' (a word break for readline) the replies hold only what follows it.
expect "dmsd sample --source test:smpte" smpte smpte75 smpte100 smpte-rp-219
if command -v gst-inspect-1.0 >/dev/null; then
    # The pattern list is videotestsrc's (what `test:PATTERN` accepts).
    patterns=$(gst-inspect-1.0 videotestsrc 2>/dev/null |
        sed -n '/^  pattern /,/^  [a-z]/p' | grep -o '([0-9]*): [a-z0-9-]*' | awk '{print $2}')
    if [[ -n $patterns ]]; then
        expect "dmsd sample --source test:" $patterns
    fi
fi

# Files: videos for analyze, YAML for --config, directories for --state-dir.
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1
mkdir trips state
touch trip1.mp4 trip2.mkv notes.txt dmsd.yaml .50-fleet.yaml.new
expect "dmsd analyze trip" trip1.mp4 trip2.mkv trips
expect "dmsd analyze --output no" notes.txt
expect "dmsd run --config " dmsd.yaml state trips
expect "dmsd run --state-dir " state trips
expect "dmsd check-config dmsd.yaml .5" .50-fleet.yaml.new
expect "dmsd sample --source file:tri" trip1.mp4 trip2.mkv trips

if ((failures)); then
    echo "$failures completion check(s) failed" >&2
    exit 1
fi
echo "completion: all checks passed"
