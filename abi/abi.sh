#!/usr/bin/env bash
# abi.sh — dump the ABI of built libraries with libabigail's abidw, and
# either compare each dump with its record in abi/ (check) or overwrite the
# record (update). Used by the sdk_abi test and the ember-abi-update target
# (cmake/EmberAbi.cmake); see abi/README.md for the policy.
#
#   abi.sh check|update ABIDW ABIDIFF HEADERS_DIR LIBRARY RECORD [LIBRARY RECORD]...
#
# check: for each LIBRARY, `abidiff RECORD <fresh dump>`:
#   exit bit 8 (incompatible: a removed function...)          -> FAIL
#   exit bit 4 (a change: new function, changed type, enum value...) -> FAIL
#   no change, but `abidiff --harmless` sees one (a new enumerator...) -> FAIL
#   anything else abidiff complains about (bits 1, 2)         -> FAIL
# Every failure prints abidiff's report and how to record a deliberate
# change. Exit 0 when every dump matches its record.
# update: writes each dump to its RECORD.
set -euo pipefail

usage() {
    echo "usage: $0 check|update ABIDW ABIDIFF HEADERS_DIR LIBRARY RECORD [LIBRARY RECORD]..." >&2
    exit 2
}
[ $# -ge 6 ] && [ $(( ($# - 4) % 2 )) -eq 0 ] || usage
mode=$1 abidw=$2 abidiff=$3 headers=$4
shift 4
case "$mode" in check|update) ;; *) usage ;; esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Stable, checkout-independent dumps: only the public headers' types (opaque
# handles stay declarations), no file locations or build paths, type ids
# from hashes so that a re-record changes only what changed.
dump() {
    "$abidw" --headers-dir "$headers" --drop-private-types --drop-undefined-syms \
        --no-show-locs --no-corpus-path --no-comp-dir-path --type-id-style hash \
        "$1" --out-file "$2"
}

how_to_update="If the change is deliberate and compatible (see abi/README.md), record it:
    cmake --build <build-dir> --target ember-abi-update
and commit the abi/*.abi files with the change (bump EM_PLUGIN_ABI_MINOR for a
plugin-ABI addition). An incompatible change needs a new major version instead."

failed=0
while [ $# -gt 0 ]; do
    lib=$1 record=$2
    shift 2
    name=$(basename "$record")
    if [ ! -f "$lib" ]; then
        echo "abi: $lib does not exist (build it first)" >&2
        exit 1
    fi
    if ! dump "$lib" "$tmp/$name" 2>"$tmp/abidw.err"; then
        echo "abi: abidw failed on $lib:" >&2
        cat "$tmp/abidw.err" >&2
        exit 1
    fi
    if ! grep -q "<function-decl" "$tmp/$name"; then
        echo "abi: abidw found no exported function with debug info in $lib (built without -g?)" >&2
        exit 1
    fi
    if [ "$mode" = update ]; then
        cp "$tmp/$name" "$record"
        echo "abi: wrote $record from $lib"
        continue
    fi
    if [ ! -f "$record" ]; then
        echo "abi: FAIL: no record $record for $lib" >&2
        echo "$how_to_update" >&2
        failed=1
        continue
    fi
    rc=0
    "$abidiff" "$record" "$tmp/$name" >"$tmp/report" 2>&1 || rc=$?
    if [ $rc -eq 0 ]; then
        "$abidiff" --harmless "$record" "$tmp/$name" >"$tmp/report" 2>&1 || rc=$?
        if [ $rc -ne 0 ]; then
            echo "abi: FAIL: $lib has compatible changes that $record does not record" \
                 "(e.g. a new enumerator; abidiff --harmless exit $rc):" >&2
            cat "$tmp/report" >&2
            echo "$how_to_update" >&2
            failed=1
        else
            echo "abi: $lib matches $record"
        fi
        continue
    fi
    if [ $((rc & 8)) -ne 0 ]; then
        echo "abi: FAIL: INCOMPATIBLE change in $lib against $record (abidiff exit $rc):" >&2
    elif [ $((rc & 4)) -ne 0 ]; then
        echo "abi: FAIL: $lib differs from $record (abidiff exit $rc): review the report;" \
             "additions (new functions, new table slots at the end of a struct_size-versioned" \
             "struct) are compatible, other changes are not:" >&2
    else
        echo "abi: FAIL: abidiff could not compare $record with the dump of $lib (exit $rc):" >&2
    fi
    cat "$tmp/report" >&2
    echo "$how_to_update" >&2
    failed=1
done
exit $failed
