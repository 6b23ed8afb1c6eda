# Shared by the study scripts (sourced): run one part of a study unless the file that marks it done exists, append
# its console output to $OUT/run.log and its wall time to $OUT/timings.csv. The caller sets OUT and TAG.
part() {   # name, file that marks it done, then the command
  local name=$1 done=$2; shift 2
  if [[ -f $done ]]; then echo "[$TAG] $name: done ($done)"; return; fi
  echo "[$TAG] $name: $*"
  local t0=$SECONDS
  "$@" 2>&1 | tee -a "$OUT/run.log"
  echo "$name,$((SECONDS - t0)),$(date -u +%FT%TZ)" >> "$OUT/timings.csv"
}
