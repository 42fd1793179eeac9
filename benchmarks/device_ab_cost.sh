#!/usr/bin/env bash
# What an A/B run costs on a lent GPU machine (docs/gate.md, "A/B"): the copied tree is
# committed as HEAD, the default suite runs once to fill the cache, then `pytest --perf-suite=only`
# and `pytest --perf-suite=only --perf-ab=HEAD` run in turn, ROUNDS times each, timed whole.
# Usage: [ROUNDS=2] benchmarks/device_ab_cost.sh [pytest options]; logs go to $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/perfsuite-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PERFSUITE_CACHE_DIR=/tmp/perfsuite-cache
git --version > /dev/null || { echo "no git on this machine"; exit 3; }
python3 -m pip install -q --no-deps --no-build-isolation -e . > /dev/null 2>&1
if ! git rev-parse --verify -q HEAD > /dev/null 2>&1; then
  git init -q . && git add -A && git -c user.email=ab@perfsuite -c user.name=ab commit -qm tree
fi
suite=(python3 -m pytest -p no:cacheprovider -q --perf-suite=only --perf-device cuda "$@")
"${suite[@]}" > "$OUT/cost_fill.log" 2>&1
for round in $(seq "${ROUNDS:-2}"); do
  for kind in plain ab; do
    extra=(); [ "$kind" = ab ] && extra=(--perf-ab=HEAD)
    start=$(date +%s.%N)
    "${suite[@]}" "${extra[@]}" > "$OUT/cost_${kind}_$round.log" 2>&1
    rc=$?
    end=$(date +%s.%N)
    echo "$kind round $round: $(python3 -c "print(round($end - $start, 1))") s (exit $rc): $(tail -1 "$OUT/cost_${kind}_$round.log")"
  done
done
