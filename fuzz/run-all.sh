#!/usr/bin/env bash
# Runs every fuzz target, one after the other, for SECONDS each (default 60), and prints the
# executions, corpus size and crashes of each run.
#
#   ./run-all.sh 600                 # every target, 10 minutes each
#   ./run-all.sh 60 sse webhook      # some targets
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). Builds once
# (optimised, debug assertions and overflow checks on, no sanitizer: the SDK has no unsafe code),
# then runs the built binaries directly under `nice -n 10`. Seeds come from ../fixtures
# (seed-corpus.sh); corpora, crash artifacts and logs stay out of git (.gitignore).
# Exits 1 if any target crashed; the reproducer is in artifacts/<target>/.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"

secs="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(prediction page error sse webhook model_ref)

nice -n 10 cargo +nightly fuzz build -O --debug-assertions --sanitizer none
triple="$(rustc +nightly -vV | sed -n 's/^host: //p')"
bin="target/$triple/release"
./seed-corpus.sh "${targets[@]}"
mkdir -p logs

summary=()
failed=0
for t in "${targets[@]}"; do
  mkdir -p "artifacts/$t" "corpus/$t"
  dict=()
  [ -f "dict/$t.dict" ] && dict=("-dict=dict/$t.dict")
  echo "=== $t: ${secs}s ==="
  start=$(date +%s)
  rc=0
  nice -n 10 "$bin/$t" "corpus/$t" \
    -artifact_prefix="artifacts/$t/" \
    -max_total_time="$secs" -rss_limit_mb=2048 -timeout=30 -print_final_stats=1 \
    "${dict[@]}" > "logs/$t.log" 2>&1 || rc=$?
  took=$(( $(date +%s) - start ))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "logs/$t.log" | tail -1)
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "logs/$t.log" | tail -1 || true)
  # libFuzzer's own count (inputs kept in memory) and the files on disk (which also hold inputs
  # since reduced or superseded).
  corpus=$(printf '%s' "$done_line" | sed -n 's/.*corp: \([0-9]*\/[0-9]*[A-Za-z]*\).*/\1/p')
  files=$(find "corpus/$t" -type f | wc -l)
  crashes=$(find "artifacts/$t" -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' -o -name 'leak-*' \) | wc -l)
  [ "$rc" -ne 0 ] && failed=1
  line=$(printf '%-11s %6ss %14s execs  corpus %12s (%s files)  crashes %s  exit %s' \
    "$t" "$took" "${execs:-?}" "${corpus:-?}" "$files" "$crashes" "$rc")
  echo "$line"
  [ -n "$done_line" ] && echo "  $done_line"
  [ "$rc" -ne 0 ] && grep -m3 -E 'panicked|ERROR|SUMMARY|Test unit written' "logs/$t.log" | sed 's/^/  /' || true
  summary+=("$line")
done

echo
echo "=== summary (${secs}s per target) ==="
printf '%s\n' "${summary[@]}"
exit "$failed"
