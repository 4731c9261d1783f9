#!/usr/bin/env bash
# tests/docs_test.sh — the documentation stands on its own:
# - no file of the project refers to the design notes kept outside the
#   repository (the parent folder's "shared" directory, or its "spec"
#   folder under any path), which a user's clone does not have: the facts
#   belong in docs/ with their public sources;
# - every relative link of a Markdown file (docs/*.md, the READMEs) points
#   at a file that exists, and a link to a heading (#anchor) at a heading
#   of that file (GitHub's rule: lower case, punctuation dropped, spaces to
#   hyphens).
# The files are `git ls-files` in a git checkout, else every file under the
# root except .git, build* and a top-level shared/ (the notes themselves). Links inside fenced code
# blocks are not links. Each finding is printed as FILE:LINE; the test fails
# on any.
#   usage: tests/docs_test.sh [SOURCE_DIR]
set -uo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root" || exit 1
if [[ ! -f CMakeLists.txt || ! -d docs ]]; then
    echo "docs_test: $root is not the project's root (no CMakeLists.txt and docs/)"
    exit 1
fi

# The patterns are assembled so that this file does not match them itself
# and needs no exception: a real reference written here is still caught.
up='../'
pat_parent="${up}shared"
pat_spec="shared/""spec/"

files=()
how="git ls-files"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    while IFS= read -r -d '' f; do [[ -f $f ]] && files+=("$f"); done < <(git ls-files -z)
fi
if ((${#files[@]} == 0)); then # not a checkout (or an untracked copy inside another one)
    while IFS= read -r -d '' f; do files+=("${f#./}"); done < <(
        find . \( -path ./.git -o -path './build*' -o -path ./shared \) -prune -o -type f -print0)
    how="find"
fi
if ((${#files[@]} == 0)); then
    echo "docs_test: no files found under $root ($how)"
    exit 1
fi

bad=0
hits=$(printf '%s\0' "${files[@]}" | xargs -0 grep -nIF -e "$pat_parent" -e "$pat_spec" --)
if [[ -n $hits ]]; then
    echo "docs_test: references to notes outside the repository (write the fact in docs/ with its public source):"
    echo "$hits" | sed 's/^/  /'
    bad=1
fi

# The anchors of a Markdown file's headings, one per line.
anchors() {
    awk '/^[[:space:]]*```/ { fence = !fence; next } !fence && /^#+[[:space:]]/' "$1" |
        sed -E 's/^#+[[:space:]]+//; s/[[:space:]]+$//' | tr '[:upper:]' '[:lower:]' |
        sed -E 's/[^a-z0-9 _-]//g; s/ /-/g'
}

links=0
for f in "${files[@]}"; do
    [[ $f == *.md ]] || continue
    dir=$(dirname "$f")
    # FILE-LINE<TAB>target for every ](target) outside fenced code blocks
    while IFS=$'\t' read -r line target; do
        target=${target%% *} # drop a link title: (file "title")
        case $target in
            http://* | https://* | mailto:* | '') continue ;;
        esac
        links=$((links + 1))
        path=${target%%#*} anchor=
        [[ $target == *'#'* ]] && anchor=${target#*#}
        if [[ -z $path ]]; then
            dest=$f
        else
            dest=$dir/$path
            if [[ ! -e $dest ]]; then
                echo "docs_test: $f:$line: link to $target: no such file ($dest)"
                bad=1
                continue
            fi
        fi
        if [[ -n $anchor && $dest == *.md && -f $dest ]] && ! anchors "$dest" | grep -qxF -- "$anchor"; then
            echo "docs_test: $f:$line: link to $target: $dest has no heading #$anchor"
            bad=1
        fi
    done < <(awk '/^[[:space:]]*```/ { fence = !fence; next }
                  !fence {
                      s = $0
                      while (match(s, /\]\([^)]*\)/)) {
                          print FNR "\t" substr(s, RSTART + 2, RLENGTH - 3)
                          s = substr(s, RSTART + RLENGTH)
                      }
                  }' "$f")
done

if ((bad)); then
    exit 1
fi
echo "docs_test: ${#files[@]} files ($how): no reference outside the repository; $links relative Markdown links resolve"
