#!/usr/bin/env bash
# test/format/check.sh - the C sources keep to .clang-format (make format-check).
#
# Usage: test/format/check.sh [BASE]      (make format-check [FORMAT_BASE=main])
#
# Always: no line of a tracked .c or .h file is longer than .clang-format's ColumnLimit (100),
# counted in characters. The sources predate the check and about 600 of their lines differ from
# what clang-format would write; reformatting them all at once would collide with every branch
# in flight, so the whole-file check is not on by default.
# With BASE (a git ref, e.g. main): also the lines changed since BASE must be as clang-format
# writes them (clang-format-diff), so new code is formatted; `git clang-format BASE` fixes them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
base=${1:-}

limit=$(sed -n 's/^ColumnLimit: *\([0-9]*\).*/\1/p' .clang-format)
[[ -n $limit ]] || { echo "format-check: no ColumnLimit in .clang-format" >&2; exit 1; }
mapfile -t files < <(git ls-files '*.c' '*.h')

# grep counts characters, not bytes, in a UTF-8 locale (the box drawings in comments).
long=$(LC_ALL=C.UTF-8 grep -nE "^.{$((limit + 1)),}$" "${files[@]}" | cut -d: -f1,2 || true)
if [[ -n $long ]]; then
  echo "format-check: lines longer than $limit columns (clang-format -i --lines=N:N FILE):" >&2
  echo "$long" >&2
  exit 1
fi
echo "format-check: ${#files[@]} C files, no line over $limit columns"

if [[ -n $base ]]; then
  command -v clang-format-diff >/dev/null || {
    echo "format-check: clang-format-diff is missing: apt-get install clang-format" >&2
    exit 1
  }
  fix=$(git diff -U0 --no-color "$base" -- '*.c' '*.h' | clang-format-diff -p1)
  if [[ -n $fix ]]; then
    echo "format-check: lines changed since $base that clang-format writes otherwise" \
      "(git clang-format $base fixes them):" >&2
    echo "$fix" >&2
    exit 1
  fi
  echo "format-check: every line changed since $base is as clang-format writes it"
fi
