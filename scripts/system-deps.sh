#!/usr/bin/env bash
# Installs the system tools the test suite drives: tmux (terminal tests), bubblewrap (sandbox) and a
# C compiler (the serving engine's native attention kernel, engine/serve/native.py).
# Without root or apt-get it only reports what is missing; the tests that need a tool then skip
# with a visible reason.
set -euo pipefail
missing=()
command -v tmux >/dev/null 2>&1 || missing+=(tmux)
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
command -v "${CC:-cc}" >/dev/null 2>&1 || missing+=(gcc)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${missing[*]} with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    echo "note: ${missing[*]} missing and cannot be installed here (needs root and apt-get); tests using them will skip" >&2
fi
