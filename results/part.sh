# Shared by the study scripts (sourced): run one part of a study unless the file that marks it done exists, append
# its console output to $OUT/run.log and its wall time to $OUT/timings.csv. The caller sets OUT and TAG.
# A pruning trajectory.json is written from its first step on (it is how a cut run resumes): it marks its part done
# only once its status is no longer "running" (so a rerun resumes it: run one queue at a time, or two prune processes
# would write the same trajectory).
finished() {   # file
  [[ -f $1 ]] || return 1
  [[ $1 != *trajectory.json ]] && return 0
  python -c 'import json, sys; sys.exit(json.load(open(sys.argv[1])).get("status") == "running")' "$1"
}

part() {   # name, file that marks it done, then the command
  local name=$1 done=$2; shift 2
  if finished "$done"; then echo "[$TAG] $name: done ($done)"; return; fi
  echo "[$TAG] $name: $*"
  local t0=$SECONDS
  "$@" 2>&1 | tee -a "$OUT/run.log"
  echo "$name,$((SECONDS - t0)),$(date -u +%FT%TZ)" >> "$OUT/timings.csv"
}
