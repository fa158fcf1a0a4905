#!/usr/bin/env bash
# tools/memcheck_workload.py under valgrind's memcheck, then a summary:
# invalid reads/writes and uses of uninitialised memory (any, and those with
# a fastnet frame in their stack), and definitely lost blocks allocated from
# fastnet's extension.
#
#   bash tools/memcheck.sh [--rounds N]          (default 3 rounds; ~1-3 minutes)
#
# PYTHONMALLOC=malloc makes every Python object a malloc block valgrind can
# check (pymalloc's arenas would hide overruns and confuse it). Interpreter
# start-up and numpy keep memory to the end on purpose: blocks still reachable
# at exit are not leaks and are not reported; tools/valgrind-python.supp
# silences the few definite "leaks" CPython itself has at exit.
# Exit status 1 if an error or a definite leak has a fastnet frame.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
LOG=${MEMCHECK_LOG:-/tmp/fastnet-memcheck.log}
command -v valgrind >/dev/null || { echo "memcheck.sh: valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }

PYTHONMALLOC=malloc valgrind --tool=memcheck --log-file="$LOG" --num-callers=40 \
    --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite \
    --suppressions="$ROOT/tools/valgrind-python.supp" \
    "$PYTHON" "$ROOT/tools/memcheck_workload.py" "$@"

"$PYTHON" - "$LOG" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
pid = re.search(r"^==(\d+)==", text, re.M).group(1)
records, block = [], []
for line in text.splitlines():
    body = line.split("== ", 1)[1] if line.startswith(f"=={pid}== ") else ""
    if body.strip():
        block.append(body)
    elif block:
        records.append("\n".join(block))
        block = []
kinds = ("Invalid read", "Invalid write", "Invalid free", "Mismatched free",
         "Conditional jump or move depends on uninitialised", "Use of uninitialised",
         "Syscall param", "Source and destination overlap")
errors = [r for r in records if r.startswith(kinds)]
leaks = [r for r in records if "definitely lost in loss record" in r.splitlines()[0]]
ours = lambda r: "_cengine" in r or "fastnet" in r
summary = re.search(r"ERROR SUMMARY: .*", text)
lost = re.search(r"definitely lost: .*", text)
print(f"memcheck log: {sys.argv[1]}")
print(f"memory errors: {len(errors)} in all, {sum(map(ours, errors))} with a fastnet frame")
print(f"definitely lost: {lost.group(0).split(': ', 1)[1] if lost else '0 bytes in 0 blocks'} "
      f"in all; {sum(map(ours, leaks))} loss records allocated from fastnet")
print(summary.group(0) if summary else "no ERROR SUMMARY line")
for record in [r for r in errors + leaks if ours(r)][:5]:
    print("----\n" + record)
sys.exit(1 if any(map(ours, errors + leaks)) else 0)
PY
