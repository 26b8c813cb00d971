#!/bin/sh
# Quick start: make a scratch git repository, run examples/hello.yml and then the MapReduce
# examples/mapreduce.yml in it through prodigyd, show what landed on the branch, then stop
# the daemon. Nothing outside the scratch folder is touched: PRODIGY_HOME (store, socket,
# worktrees) lives there too.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
scratch=$(mktemp -d "${TMPDIR:-/tmp}/prodigy-quickstart.XXXXXX")
export PRODIGY_HOME="$scratch/prodigy-home"
export GIT_AUTHOR_NAME="${GIT_AUTHOR_NAME:-Prodigy Quickstart}"
export GIT_AUTHOR_EMAIL="${GIT_AUTHOR_EMAIL:-quickstart@prodigy.invalid}"
export GIT_COMMITTER_NAME="${GIT_COMMITTER_NAME:-$GIT_AUTHOR_NAME}"
export GIT_COMMITTER_EMAIL="${GIT_COMMITTER_EMAIL:-$GIT_AUTHOR_EMAIL}"
if command -v prodigyctl >/dev/null 2>&1; then ctl=prodigyctl; else ctl="python3 -m prodigyctl.main"; fi

git init -q -b main "$scratch/repo"
cd "$scratch/repo"
printf '# A scratch project\n' > README.md
git add README.md && git commit -q -m "initial commit"

echo "== prodigyctl run examples/hello.yml -y   (in $scratch/repo)"
status=0
$ctl run "$here/hello.yml" -y || status=$?

echo
echo "== prodigyctl run examples/mapreduce.yml -y   (one agent per file, merged back)"
$ctl run "$here/mapreduce.yml" -y || status=$?

echo
echo "== branch main afterwards"
git log --oneline --graph
[ -f hello/GREETING.md ] && cat hello/GREETING.md
[ -f stats/SUMMARY.txt ] && cat stats/SUMMARY.txt
echo
$ctl sessions ls
$ctl daemon stop
echo
echo "The scratch repository and its store are kept for a look: $scratch"
echo "(remove them with: rm -rf $scratch)"
exit $status
