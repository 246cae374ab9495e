#!/bin/bash
# c_snapshot on a storage in the flat layout, simulated power loss only
# (the other kinds behave as in c_snapshot): there every file of A (and
# B) is in one directory, x.oid and x.serial included, so the order in
# which the disk writes directories cannot reorder them, but the replay
# still checks every point where a power cut can stop a flat storage's
# open, flush, snapshot entry and close.
export DS_CRASH_FORMAT=flat
export DS_CRASH_KINDS=${DS_CRASH_KINDS:-powerloss}
. "$(dirname "$0")/c_snapshot.sh"
