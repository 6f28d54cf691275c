#!/usr/bin/env bash
# Mutation testing of the core's rule files (state.rs, strings.rs, code.rs, provisioner.rs)
# on the lines changed since the commit in .ci/mutants-base, where the full run was done
# and its list of equivalent mutants (.cargo/mutants.toml) last refreshed. A mutant the
# core's tests do not catch fails CI: kill it with a test, or, if it cannot change
# behaviour, add it to .cargo/mutants.toml with the reason (swivel-provision/MUTANTS.md).
# A mutant whose tests hang (a timeout) counts as caught. Bounded: a time limit per cargo
# command and one for the whole step.
set -euo pipefail
cd "$(dirname "$0")/.."

files=(
  swivel-provision/src/state.rs
  swivel-provision/src/strings.rs
  swivel-provision/src/code.rs
  swivel-provision/src/provisioner.rs
)
base="$(tr -d '[:space:]' < .ci/mutants-base)"
if ! git cat-file -e "${base}^{commit}" 2>/dev/null; then
  echo "mutants: the base commit ${base} of .ci/mutants-base is not in this clone's history." >&2
  echo "Run the full mutation test (swivel-provision/MUTANTS.md) and record its commit there." >&2
  exit 1
fi

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
git diff "$base" -- "${files[@]}" > "$scratch/rules.diff"
if [ ! -s "$scratch/rules.diff" ]; then
  echo "mutants: the rule files are unchanged since ${base}; nothing to test"
  exit 0
fi
echo "mutants: the rule files changed since ${base}:"
git diff --stat "$base" -- "${files[@]}"

command -v cargo-mutants >/dev/null || cargo install cargo-mutants --locked

# A target directory of its own: cargo-mutants builds a copy of the tree at the same
# workspace-relative paths, so its mutated artefacts would otherwise look fresh to the
# steps after this one.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/mutants"

# Per cargo command: a build may take this long; tests get five times the unmutated run,
# at least this many seconds. The whole step stops at the cap (an unfinished run fails).
build_secs="${SWIVEL_MUTANTS_BUILD_SECONDS:-600}"
test_secs="${SWIVEL_MUTANTS_TEST_SECONDS:-120}"
cap_secs="${SWIVEL_MUTANTS_SECONDS:-1800}"
status=0
timeout --signal=INT --kill-after=60 "$cap_secs" \
  cargo mutants --in-diff "$scratch/rules.diff" -p swivel-provision -j 1 --no-shuffle \
  --build-timeout "$build_secs" --minimum-test-timeout "$test_secs" \
  --colors never -o "$scratch" || status=$?

missed="$scratch/mutants.out/missed.txt"
case "$status" in
  0) echo "mutants: every mutant in the changed lines was caught" ;;
  2 | 3)
    if [ -s "$missed" ]; then
      echo "mutants: not caught by any test of the core:" >&2
      cat "$missed" >&2
      exit 1
    fi
    echo "mutants: every mutant in the changed lines was caught (some by hanging the tests)"
    ;;
  124 | 130 | 137)
    echo "mutants: the run passed its cap of ${cap_secs} s; run it in full by hand" >&2
    echo "(swivel-provision/MUTANTS.md) and record the commit in .ci/mutants-base." >&2
    exit 1
    ;;
  *)
    echo "mutants: cargo mutants failed with status ${status}" >&2
    exit 1
    ;;
esac
