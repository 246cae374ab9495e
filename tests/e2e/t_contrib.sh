#!/bin/bash
# contrib/: the bash completion (sourced in bash, its function driven as
# bash drives it: COMP_WORDS/COMP_CWORD in, COMPREPLY out), the systemd
# units (systemd-analyze verify, when this machine has it) and the cron
# line.
. "$(dirname "$0")/lib.sh" || exit 1
: "${DS_SOURCE_DIR:?}"
C=$DS_SOURCE_DIR/contrib

# complete_words WORD...: what _ds offers for the last WORD (one a line,
# sorted), the command being $DS_BIN
complete_words() {
	bash -c '. "$1"; shift
	         complete -p ds | grep -q -- "-F _ds ds" || exit 9
	         COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
	         _ds || exit 8
	         printf "%s\n" "${COMPREPLY[@]}"' \
		complete "$C/bash-completion/ds" "$DS_BIN" "$@" | sort
}
# offers EXPECTED WORD...: the completion of WORD... is exactly EXPECTED
# (space separated)
offers() {
	local want=$1 got
	shift
	got=$(complete_words "$@" | tr '\n' ' ' | sed 's/ $//')
	assert_eq "$want" "$got" "completion of 'ds $*'"
}

# the subcommands: every one ds --help lists, and help
must_pass ds --help
subs=$(sed -n '/^Subcommands:/,/^$/p' "$LAST_STDOUT" | awk 'NF > 1 { print $1 }')
want=$(printf '%s\n' $subs help | sort | tr '\n' ' ' | sed 's/ $//')
offers "$want" ""
offers "log" l
offers "new-oid" ne
offers "pack" help pa
offers "--help --version" --
# options: a prefix, short and long spellings, after other words
offers "--user" commit --u
offers "--master-command --max-size" replica --ma
offers "--help --json --max-count --quiet --verbose -h -n -q -v" log -
offers "--json" history "$SCRATCH" --j
# an option's argument: a DIR completes directories only, a count nothing
mkdir "$SCRATCH/adir"
: >"$SCRATCH/afile"
offers "$SCRATCH/adir" whatsnew --storage "$SCRATCH/a"
offers "$SCRATCH/adir" replica -d "$SCRATCH/a"
offers "" log -n ""
offers "" log --max-count ""
# an operand: file names
offers "$SCRATCH/adir $SCRATCH/afile" dump "$SCRATCH/a"
# every option offered for every subcommand is one that subcommand accepts
for sub in $subs; do
	opts=$(complete_words "$sub" -)
	[ -n "$opts" ] || fail "no options offered for ds $sub"
	for opt in $opts; do
		rc=0
		timeout 20 "$DS_BIN" "$sub" "$opt" >/dev/null 2>"$SCRATCH/err" </dev/null || rc=$?
		if grep -Eq "unrecognized option|invalid option" "$SCRATCH/err"; then
			fail "ds $sub $opt: offered, but refused: $(head -n 1 "$SCRATCH/err")"
		fi
	done
done

# systemd units: copies with ds at $DS_BIN (verify checks the program
# exists) and an instance name; verify must not say anything
if command -v systemd-analyze >/dev/null; then
	mkdir "$SCRATCH/units"
	for f in "$C"/systemd/*; do
		b=$(basename "$f")
		sed "s|/usr/local/bin/ds|$DS_BIN|" "$f" >"$SCRATCH/units/${b/@./@demo.}"
	done
	(cd "$SCRATCH/units" && systemd-analyze verify --man=no ./*) \
		>"$SCRATCH/verify.out" 2>&1 || { cat "$SCRATCH/verify.out" >&2; fail "systemd-analyze verify"; }
	[ ! -s "$SCRATCH/verify.out" ] || { cat "$SCRATCH/verify.out" >&2; fail "systemd-analyze verify warned"; }
else
	echo "systemd-analyze not installed: units not verified (contrib/README.md)"
fi
# every ds option the units and the cron line use is one ds replica has
must_pass ds replica --help
for opt in $(grep -hoE -- ' --?[a-z][-a-z]*' "$C"/systemd/*.service "$C"/cron/ds-replica.cron | sort -u); do
	grep -qE -- "(^|[ ,])$opt([ ,=]|$)" "$LAST_STDOUT" ||
		fail "contrib uses 'ds replica $opt', which ds replica --help does not list"
done
# the cron line: five time fields, a user, the full path of ds
line=$(grep -v '^#' "$C/cron/ds-replica.cron" | grep .)
set -- $line
[ $# -ge 9 ] || fail "cron line too short: $line"
assert_eq "/usr/local/bin/ds" "$7" "cron line's command"
assert_eq "replica" "$8" "cron line's subcommand"
