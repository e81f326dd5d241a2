#!/usr/bin/env bash
# sdk_install_test.sh — the SDK as a third party meets it: install Ember into
# a temporary prefix, build the example plugin and a small application out
# of tree against that prefix, and run them. Run by CTest (sdk_install).
#
#   sdk_install_test.sh BUILD_DIR SOURCE_DIR CMAKE CC [EXTRA_FLAGS]
#
# EXTRA_FLAGS (e.g. the sanitizer flags of an ASan build) are added to every
# compile and link, so out-of-tree objects match the installed library.
# Steps (each prints a line; the first failure stops with its reason):
#   1. cmake --install BUILD_DIR --prefix <tmp>: the layout (headers in
#      include/ember, libember.so.<SOVERSION> and its links, plugins in
#      lib/ember, ember-info, the CMake package, ember.pc, the example's
#      sources and the guide);
#   2. the installed ember-info, with no EMBER_* variable set, loads the
#      installed CPU plugin from lib/ember;
#   3. the installed copy of plugins/example is configured with
#      find_package(Ember) and built; it exports em_plugin_init only;
#   4. tests/sdk/sdk_forward.c is built twice: with pkg-config (ember.pc) and
#      as a CMake project with find_package(Ember) (tests/sdk/consumer);
#   5. both run on the out-of-tree plugin, chosen with
#      EMBER_BACKEND=/path/to/libember-example.so and with
#      EMBER_PLUGIN_PATH + EMBER_BACKEND=example (forward pass vs the CPU,
#      em_fallback_count printed);
#   6. `cmake --install` of the plugin puts it in the installed lib/ember,
#      where EMBER_BACKEND=example finds it with no EMBER_PLUGIN_PATH;
#   7. the installed ember-conformance runs on the installed plugin, chosen by
#      name (after step 6 a path to the build's copy would clash with it:
#      two plugins named 'example'); skipped if the tool is not installed.
# The prefix is made outside the build tree on purpose: the loader also
# searches the build tree's plugin folder while libember lives inside the
# build tree, which would hide a broken installed layout.
set -euo pipefail
[ $# -ge 4 ] || { echo "usage: $0 BUILD_DIR SOURCE_DIR CMAKE CC [EXTRA_FLAGS]" >&2; exit 2; }
build_dir=$(cd "$1" && pwd) source_dir=$(cd "$2" && pwd) cmake=$3 cc=$4 extra=${5:-}
unset EMBER_BACKEND EMBER_PLUGIN_PATH EMBER_STRICT EMBER_LOG EMBER_EXAMPLE_DEVICES

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ember-sdk.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
case "$tmp/" in
"$build_dir"/*) echo "sdk: FAIL: the temporary folder $tmp is inside the build tree" >&2; exit 1 ;;
esac
prefix=$tmp/prefix

step() { echo "== sdk: $*"; }
fail() { echo "sdk: FAIL: $*" >&2; exit 1; }
# run LOG CMD...: runs CMD with its output in LOG; on failure shows LOG and fails.
run() {
    local log=$1
    shift
    if ! "$@" >"$log" 2>&1; then
        cat "$log" >&2
        fail "command failed: $*"
    fi
}

step "1. cmake --install $build_dir --prefix $prefix"
run "$tmp/install.log" "$cmake" --install "$build_dir" --prefix "$prefix"
lib=$(find "$prefix" -name libember.so -type l | head -n 1)
[ -n "$lib" ] || fail "no libember.so link installed under $prefix"
libdir=$(dirname "$lib")
for f in include/ember/ember.h include/ember/ember_plugin.h include/ember/ember_plugin_util.h \
         include/ember/ember_nn.h include/ember/ember_optim.h include/ember/ember_data.h \
         include/ember/ember_io.h bin/ember-info share/ember/plugin-example/CMakeLists.txt \
         share/ember/plugin-example/example_plugin.c share/doc/ember/writing-a-backend.md; do
    [ -e "$prefix/$f" ] || fail "$f is not installed"
done
for f in ember/libember-cpu.so cmake/Ember/EmberConfig.cmake cmake/Ember/EmberConfigVersion.cmake \
         cmake/Ember/EmberTargets.cmake cmake/Ember/EmberPlugin.cmake pkgconfig/ember.pc; do
    [ -e "$libdir/$f" ] || fail "${libdir#"$prefix"/}/$f is not installed"
done
soname=$(readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
case "$soname" in libember.so.[0-9]*) ;; *) fail "libember's SONAME is '$soname'" ;; esac
[ "$(readlink "$lib")" = "$soname" ] || fail "libember.so points to $(readlink "$lib"), not $soname"
[ -L "$libdir/$soname" ] && [ -f "$libdir/$(readlink "$libdir/$soname")" ] ||
    fail "$soname is not a link to the installed library file"
echo "   layout ok: $(cd "$libdir" && ls libember.so*), SONAME $soname"

step "2. the installed ember-info finds the installed plugins with no EMBER_* variable"
run "$tmp/info.log" "$prefix/bin/ember-info"
grep -q "$libdir/ember/libember-cpu.so" "$tmp/info.log" ||
    { cat "$tmp/info.log" >&2; fail "ember-info did not load $libdir/ember/libember-cpu.so"; }
if grep "libember-.*\.so" "$tmp/info.log" | grep -v "skipped" | grep -q "$build_dir/"; then
    cat "$tmp/info.log" >&2
    fail "the installed ember-info used a plugin of the build tree $build_dir"
fi
echo "   ember-info: cpu plugin loaded from ${libdir#"$prefix"/}/ember"

step "3. plugins/example out of tree, with find_package(Ember)"
cp -r "$prefix/share/ember/plugin-example" "$tmp/example-src"
run "$tmp/example-configure.log" "$cmake" -S "$tmp/example-src" -B "$tmp/example-build" \
    -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="$extra" \
    -DCMAKE_BUILD_TYPE=Release
run "$tmp/example-build.log" "$cmake" --build "$tmp/example-build"
plugin=$tmp/example-build/libember-example.so
[ -f "$plugin" ] || fail "the out-of-tree build made no libember-example.so"
if grep -q "warning:" "$tmp/example-build.log"; then
    cat "$tmp/example-build.log" >&2
    fail "the example plugin builds with warnings"
fi
syms=$(nm -D --defined-only "$plugin" | awk 'NF >= 3 {print $3}' | tr '\n' ' ')
[ "$syms" = "em_plugin_init " ] || fail "the example plugin exports '$syms'"
echo "   built $plugin"

step "4. an application built with pkg-config and with find_package(Ember)"
export PKG_CONFIG_PATH=$libdir/pkgconfig
pc_plugindir=$(pkg-config --variable=plugindir ember)
[ "$(cd "$pc_plugindir" && pwd -P)" = "$(cd "$libdir/ember" && pwd -P)" ] ||
    fail "pkg-config --variable=plugindir ember gives $pc_plugindir, not $libdir/ember"
# shellcheck disable=SC2046,SC2086
run "$tmp/pc-build.log" "$cc" -std=c11 -Wall -Wextra $extra $(pkg-config --cflags ember) \
    "$source_dir/tests/sdk/sdk_forward.c" -o "$tmp/sdk_forward_pc" \
    $(pkg-config --libs ember) -lm -Wl,-rpath,"$(pkg-config --variable=libdir ember)"
run "$tmp/consumer-configure.log" "$cmake" -S "$source_dir/tests/sdk/consumer" \
    -B "$tmp/consumer-build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_C_FLAGS="$extra" -DSDK_FORWARD_SOURCE="$source_dir/tests/sdk/sdk_forward.c"
run "$tmp/consumer-build.log" "$cmake" --build "$tmp/consumer-build"
echo "   built sdk_forward twice (pkg-config, find_package)"

step "5a. EMBER_BACKEND=$plugin (pkg-config build)"
EMBER_BACKEND=$plugin "$tmp/sdk_forward_pc" || fail "sdk_forward with EMBER_BACKEND=<path> failed"
step "5b. EMBER_PLUGIN_PATH=$tmp/example-build EMBER_BACKEND=example (find_package build)"
EMBER_PLUGIN_PATH=$tmp/example-build EMBER_BACKEND=example "$tmp/consumer-build/sdk_forward" ||
    fail "sdk_forward with EMBER_PLUGIN_PATH and EMBER_BACKEND=example failed"

step "6. cmake --install of the plugin: found without EMBER_PLUGIN_PATH"
run "$tmp/example-install.log" "$cmake" --install "$tmp/example-build"
[ -f "$libdir/ember/libember-example.so" ] ||
    { cat "$tmp/example-install.log" >&2; fail "the plugin was not installed into $libdir/ember"; }
EMBER_BACKEND=example "$tmp/sdk_forward_pc" >"$tmp/installed-plugin.log" 2>&1 ||
    { cat "$tmp/installed-plugin.log" >&2; fail "EMBER_BACKEND=example did not find the installed plugin"; }
grep -q "from $libdir/ember/libember-example.so" "$tmp/installed-plugin.log" ||
    { cat "$tmp/installed-plugin.log" >&2; fail "the example was not loaded from $libdir/ember"; }
echo "   EMBER_BACKEND=example loads ${libdir#"$prefix"/}/ember/libember-example.so"

step "7. ember-conformance on the plugin"
if [ -x "$prefix/bin/ember-conformance" ]; then
    "$prefix/bin/ember-conformance" --backend example ||
        fail "ember-conformance failed on the example plugin"
else
    echo "   skipped: ember-conformance is not installed (bench/ does not build it yet)"
fi
echo "sdk: all steps passed"
