#!/usr/bin/env bash
# The whole test suite with the Cython engine built under AddressSanitizer and
# UndefinedBehaviorSanitizer (gcc), in a separate copy of the tree and venv so
# the normal build is left alone.
#
#   bash tools/sanitize.sh [pytest arguments]       e.g. bash tools/sanitize.sh -x -q
#
# SANITIZE_DIR (default: a new temporary directory, removed afterwards) holds
# the copy; PYTHON picks the interpreter. Exit status is pytest's; a sanitizer
# finding aborts the test process with its report (the build uses
# -fno-sanitize-recover=all).
#
# Why the run is set up this way:
# * CPython itself is not built with ASan, so the runtime is preloaded
#   (LD_PRELOAD) ahead of everything else, as ASan requires.
# * PYTHONMALLOC=malloc: Python objects come from malloc, where ASan sees
#   them, not from pymalloc's arenas, where an overrun would go unnoticed.
# * detect_leaks=0: CPython keeps much of its memory to the end on purpose;
#   the leak check belongs to tools/memcheck.sh (valgrind, fastnet frames only).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON=${PYTHON:-python3}
if [ -n "${SANITIZE_DIR:-}" ]; then
    WORK=$SANITIZE_DIR
else
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/fastnet-sanitize.XXXXXX")
    trap 'rm -rf "$WORK"' EXIT
fi
CC=${CC:-gcc}

ASAN_LIB=$("$CC" -print-file-name=libasan.so)
UBSAN_LIB=$("$CC" -print-file-name=libubsan.so)
for lib in "$ASAN_LIB" "$UBSAN_LIB"; do
    [ -e "$lib" ] || { echo "sanitize.sh: $lib not found (install gcc's libasan/libubsan)" >&2; exit 2; }
done

echo "== copying the tree to $WORK"
rm -rf "$WORK"
mkdir -p "$WORK"
(cd "$ROOT" && git ls-files -co --exclude-standard -z | tar --null -T - -cf -) | tar -xf - -C "$WORK"

echo "== building with FASTNET_SANITIZE=address,undefined"
"$PYTHON" -m venv "$WORK/.venv"
(cd "$WORK" && FASTNET_SANITIZE=address,undefined CC="$CC" \
    .venv/bin/pip install -q -e '.[test,plot]')

echo "== tests under ASan + UBSan"
cd "$WORK"
export LD_PRELOAD="$ASAN_LIB $UBSAN_LIB"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export PYTHONMALLOC=malloc
export FASTNET_EXPECT_BACKENDS=cython,python   # the sanitized extension must load
.venv/bin/python -c 'import fastnet; print("fastnet backends:", fastnet.available_backends())'
.venv/bin/python -m pytest -p no:cacheprovider "$@"
