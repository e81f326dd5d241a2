#!/usr/bin/env bash
# deps.sh — installs the Debian packages Ember needs to build and test, if any is
# missing (used by `make deps` and .ci/run). Idempotent; silent when all are present.
#
#   scripts/deps.sh [extra-package ...]
#
# Runs apt-get non-interactively (root, or through sudo). `apt-get update` runs only
# when something has to be installed. Not for: the CUDA toolkit, which is not a Debian
# package here; the CUDA plugin is built when CMake finds it (e.g. /usr/local/cuda).
set -euo pipefail

# abigail-tools: abidw/abidiff for the ABI record check (abi/README.md, test sdk_abi).
packages=(build-essential cmake libopenblas-dev pkg-config
          mesa-vulkan-drivers libvulkan-dev glslc vulkan-validationlayers abigail-tools "$@")

if ! command -v dpkg >/dev/null 2>&1; then
    echo "deps: not a Debian-like system (no dpkg); install by hand: ${packages[*]}" >&2
    exit 0
fi

missing=()
for p in "${packages[@]}"; do
    # dpkg -s succeeds for removed-but-configured packages too: check the status line.
    if ! dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed'; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        sudo=(sudo)
    else
        echo "deps: missing ${missing[*]} and not root (no sudo): install them by hand" >&2
        exit 1
    fi
fi

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
