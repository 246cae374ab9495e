#!/bin/bash
# zodb-run.sh - ZODB through three storages in one run: this project's
# dirstorage, the original DirectoryStorage (its own Python and ZODB 5.8.1
# from /root/ds-ref, see tests/fixtures/README.md; left out with a note
# where that is absent) and FileStorage. Each kind runs bench/zodb_bench.py
# RUNS times (default 3), interleaved so that machine noise hits all
# three alike, on fresh storages under $BENCH_DIR (default
# /var/tmp/ds-zodb-bench: a disk, fsync on); the table shows each figure's
# median.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-3}
DIR=${BENCH_DIR:-/var/tmp/ds-zodb-bench}
VENV=${DS_VENV:-$ROOT/.venv}
REF=/root/ds-ref
# BENCH_PYLIB: a directory holding the dirstorage package to measure
# (e.g. build/python-lib, what ctest builds) instead of the virtualenv's;
# the setup script is then not run (it would reinstall the package)
if [ -n "${BENCH_PYLIB:-}" ]; then
	export PYTHONPATH=$BENCH_PYLIB
else
	bash "$ROOT/scripts/setup-deps.sh" >/dev/null
fi
kinds=(dirstorage filestorage)
[ -d "$REF/pylib" ] && kinds+=(original) ||
	echo "zodb-run: $REF absent: the original is left out" >&2
out=$(mktemp)
rm -rf "$DIR"
mkdir -p "$DIR"
for r in $(seq 1 "$RUNS"); do
	for k in "${kinds[@]}"; do
		if [ "$k" = original ]; then
			env -u VIRTUAL_ENV -u PYTHONPATH \
			PYTHONPATH=$REF/pylib:$REF/zodb/ZODB-5.8.1/src \
				/usr/bin/python3 "$ROOT/bench/zodb_bench.py" "$k" \
				"$DIR/$k-$r" 2>/dev/null | grep '^{' >>"$out"
		else
			"$VENV/bin/python" "$ROOT/bench/zodb_bench.py" "$k" \
				"$DIR/$k-$r" >>"$out"
		fi
		rm -rf "$DIR/$k-$r"
	done
done
python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
keys = ["commit1", "commit10", "load_warm", "load_cold"]
print("| storage | commits/s, 1 object | commits/s, 10 objects | loads/s warm | loads/s cold |")
print("|---|---|---|---|---|")
for kind in ("dirstorage", "original", "filestorage"):
    rs = [r for r in rows if r["kind"] == kind]
    if rs:
        med = [statistics.median(r[k] for r in rs) for k in keys]
        print("| %s | %s |" % (kind, " | ".join(
            ("%.1f" % m) if i < 2 else ("%d" % round(m))
            for i, m in enumerate(med))))
PY
rm -f "$out"
