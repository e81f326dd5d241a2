#!/usr/bin/env bash
# check_exports.sh — what libember.so and the plugins export (`nm -D`).
#
#   check_exports.sh LIBEMBER API_DIR [PLUGIN.so]...
#
# libember.so must export exactly the functions declared EM_API in
# API_DIR/*.h: nothing else (only em_* names; an internal em__ function or a
# helper without `static` leaking is a failure, and so is a symbol from a
# statically linked library), and nothing declared may be missing (an
# EM_API forgotten on a definition hides it under -fvisibility=hidden).
# Each plugin must export em_plugin_init only and must not link libember.
# Exit 0 when all holds; 1 with the offending names otherwise.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 LIBEMBER API_DIR [PLUGIN.so]..." >&2; exit 2; }
lib=$1 api=$2
shift 2
command -v nm >/dev/null || { echo "check_exports: nm not found (binutils)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0

# Defined dynamic symbols (name only; drop @VERSION suffixes).
nm -D --defined-only "$lib" | awk 'NF >= 3 {print $3}' | sed 's/@.*//' | sort -u >"$tmp/exported"
# Declared: the identifier before '(' on each line starting with EM_API.
cat "$api"/*.h | grep -E '^EM_API ' | sed -E 's/^EM_API[^(]*[ *]([A-Za-z_][A-Za-z0-9_]*)\(.*/\1/' \
    | sort -u >"$tmp/declared"
n_exp=$(wc -l <"$tmp/exported")
n_dec=$(wc -l <"$tmp/declared")
if [ "$n_exp" -lt 1 ] || [ "$n_dec" -lt 1 ]; then
    echo "check_exports: FAIL: found $n_exp exported and $n_dec declared functions (wrong paths?)" >&2
    exit 1
fi

grep -vE '^em_[A-Za-z0-9][A-Za-z0-9_]*$' "$tmp/exported" >"$tmp/not_em" || true
if [ -s "$tmp/not_em" ]; then
    echo "check_exports: FAIL: $lib exports symbols outside the em_ namespace (em__ names are internal):" >&2
    sed 's/^/    /' "$tmp/not_em" >&2
    failed=1
fi
comm -23 "$tmp/exported" "$tmp/declared" >"$tmp/undeclared"
if [ -s "$tmp/undeclared" ]; then
    echo "check_exports: FAIL: $lib exports symbols no header in $api declares EM_API" \
         "(internal functions must be static or hidden):" >&2
    sed 's/^/    /' "$tmp/undeclared" >&2
    failed=1
fi
comm -13 "$tmp/exported" "$tmp/declared" >"$tmp/missing"
if [ -s "$tmp/missing" ]; then
    echo "check_exports: FAIL: functions declared EM_API in $api are not exported by $lib" \
         "(not defined, or defined without EM_API under -fvisibility=hidden):" >&2
    sed 's/^/    /' "$tmp/missing" >&2
    failed=1
fi
[ $failed -eq 0 ] && echo "check_exports: $lib exports exactly the $n_dec EM_API functions of $api"

for plugin in "$@"; do
    syms=$(nm -D --defined-only "$plugin" | awk 'NF >= 3 {print $3}' | sed 's/@.*//' | sort -u | tr '\n' ' ')
    if [ "$syms" != "em_plugin_init " ]; then
        echo "check_exports: FAIL: $plugin exports '${syms% }'; a plugin exports em_plugin_init only" >&2
        failed=1
    else
        echo "check_exports: $plugin exports em_plugin_init only"
    fi
    if command -v readelf >/dev/null && readelf -d "$plugin" | grep -q 'NEEDED.*libember\.so'; then
        echo "check_exports: FAIL: $plugin links libember.so; a plugin gets the core's services" \
             "from em_host_services instead" >&2
        failed=1
    fi
done
exit $failed
