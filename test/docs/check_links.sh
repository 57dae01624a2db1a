#!/usr/bin/env bash
# test/docs/check_links.sh - every relative link of every tracked Markdown file resolves
# inside the repository. `make docs-links` runs it; `make test` depends on that.
#
# For each tracked *.md file, each link target of [text](target), ![alt](target) and
# [label]: target (outside fenced code blocks and `code spans`) must be:
#   - a file or folder of the repository, relative to the Markdown file (a leading "/" means
#     the repository root), and not outside the repository;
#   - for "path.md#anchor" and "#anchor": also a heading of that Markdown file, by GitHub's
#     rule (lower case; punctuation but "-" and "_" removed; spaces to "-"; a repeated heading
#     gets "-1", "-2", ...), or an <a name="..."> / id="..." in it.
# Links with a scheme (http:, https:, mailto:, ...) are skipped. Files count when git tracks
# them or would (untracked but not ignored): a link to build/ output is dead in a clone.
# Outside a git work tree (a release tarball) every file on disk but build/ counts.
#
# Usage: test/docs/check_links.sh        Exit status 0, or 1 with one line per broken link:
#   FILE:LINE: broken link TARGET (why)
set -euo pipefail
cd "$(dirname "$0")/../.."

declare -A known=()   # repository-relative path -> 1, for files and their folders
declare -A anchors=() # "path.md#anchor" -> 1, filled once per Markdown file on demand
declare -A scanned=()

add_path() {
  local p=$1
  while [[ -n $p && -z ${known[$p]:-} ]]; do
    known[$p]=1
    [[ $p == */* ]] || break
    p=${p%/*}
  done
}

if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  while IFS= read -r -d '' f; do
    [[ -e $f ]] && add_path "$f"
  done < <(git ls-files -z --cached --others --exclude-standard)
  mapfile -d '' docs < <(git ls-files -z -- '*.md')
else
  while IFS= read -r -d '' f; do
    add_path "${f#./}"
  done < <(find . -path ./build -prune -o -path ./.git -prune -o -type f -print0)
  mapfile -d '' docs < <(find . -path ./build -prune -o -name '*.md' -type f -print0 |
    sed -z 's|^\./||')
fi

# Prints "LINE<TAB>TARGET" for every link of Markdown file $1, or "LINE<TAB>#H<TAB>HEADING"
# for every ATX heading and "LINE<TAB>#A<TAB>NAME" for every HTML anchor.
scan() {
  awk '
  function links(s,   t) {
    while (match(s, /\]\([^)]*\)/)) {
      t = substr(s, RSTART + 2, RLENGTH - 3)
      print NR "\t" t
      s = substr(s, RSTART + RLENGTH)
    }
  }
  function html_anchors(s,   t) {
    while (match(s, /(name|id)="[^"]*"/)) {
      t = substr(s, RSTART, RLENGTH)
      sub(/^[a-z]*="/, "", t)
      sub(/"$/, "", t)
      print NR "\t#A\t" t
      s = substr(s, RSTART + RLENGTH)
    }
  }
  {
    line = $0
    if (fence != "") {
      if (line ~ "^ ? ? ?" fence) fence = ""
      next
    }
    if (line ~ /^ ? ? ?```/) { fence = "```"; next }
    if (line ~ /^ ? ? ?~~~/) { fence = "~~~"; next }
    if (line ~ /^ ? ? ?#+[ \t]/) {
      h = line
      sub(/^ *#+[ \t]+/, "", h)
      sub(/[ \t]+#*[ \t]*$/, "", h)
      print NR "\t#H\t" h
    }
    gsub(/``[^`]*``/, "", line)
    gsub(/`[^`]*`/, "", line)
    if (line ~ /^ ? ? ?\[[^]]+\]:[ \t]/) {
      t = line
      sub(/^ *\[[^]]+\]:[ \t]+/, "", t)
      print NR "\t" t
    }
    html_anchors(line)
    links(line)
  }' "$1"
}

# GitHub's anchor of a heading's text.
slug() {
  local s
  s=$(sed -E 's/!?\[([^]]*)\]\([^)]*\)/\1/g' <<<"$1" | tr '[:upper:]' '[:lower:]')
  s=$(LC_ALL=C tr -d '!"#$%&'"'"'()*+,./:;<=>?@[\\]^`{|}~' <<<"$s")
  printf '%s' "${s// /-}"
}

# Fills anchors[] for Markdown file $1 (repository-relative).
load_anchors() {
  local f=$1 n kind text a
  declare -A seen=()
  [[ -n ${scanned[$f]:-} ]] && return
  scanned[$f]=1
  while IFS=$'\t' read -r n kind text; do
    case $kind in
    '#H')
      a=$(slug "$text")
      if [[ -n ${seen[$a]:-} ]]; then
        anchors["$f#$a-${seen[$a]}"]=1
        seen[$a]=$((seen[$a] + 1))
      else
        anchors["$f#$a"]=1
        seen[$a]=1
      fi
      ;;
    '#A') anchors["$f#$text"]=1 ;;
    esac
  done < <(scan "$f")
}

broken=0
report() {
  printf '%s:%s: broken link %s (%s)\n' "$1" "$2" "$3" "$4" >&2
  broken=$((broken + 1))
}

for doc in "${docs[@]}"; do
  dir=$(dirname "$doc")
  while IFS=$'\t' read -r n target rest; do
    [[ $target == '#H' || $target == '#A' ]] && continue
    target=${target#<}
    target=${target%%>*}
    target=${target%% *}
    [[ -z $target ]] && { report "$doc" "$n" '""' "empty target"; continue; }
    [[ $target =~ ^[a-zA-Z][a-zA-Z0-9+.-]*: ]] && continue # http:, https:, mailto:, ...
    path=${target%%#*}
    anchor=
    [[ $target == *'#'* ]] && anchor=${target#*#}
    path=${path//%20/ }
    if [[ -z $path ]]; then
      rel=$doc
    else
      if [[ $path == /* ]]; then
        rel=$(realpath -m --relative-to=. "./$path")
      else
        rel=$(realpath -m --relative-to=. "$dir/$path")
      fi
      if [[ $rel == .. || $rel == ../* ]]; then
        report "$doc" "$n" "$target" "outside the repository"
        continue
      fi
      if [[ -z ${known[$rel]:-} && $rel != . ]]; then
        report "$doc" "$n" "$target" "no such file in the repository: $rel"
        continue
      fi
    fi
    if [[ -n $anchor && $rel == *.md ]]; then
      load_anchors "$rel"
      [[ -n ${anchors["$rel#$anchor"]:-} ]] ||
        report "$doc" "$n" "$target" "no heading #$anchor in $rel"
    fi
  done < <(scan "$doc")
done

if ((broken)); then
  echo "check_links.sh: $broken broken link(s)" >&2
  exit 1
fi
echo "check_links.sh: ${#docs[@]} Markdown files, every relative link resolves"
