#!/bin/bash
# The peer's SubagentStop hook: .claude/hooks/subagent-postflight.sh of ProofChecker as reference
# §7.3 describes it. Registered as `bash .claude/hooks/subagent-postflight.sh 2>/dev/null || echo '{}'`.
# It ignores stdin, takes the first marker anywhere under specs/ (depth 3), blocks the stop up to
# MAX_CONTINUATIONS times counting in the shared loop guard, and prints the marker's reason
# interpolated into the JSON without escaping (faithfully, bugs included).

MAX_CONTINUATIONS=3
LOG_DIR=".claude/logs"
LOG_FILE="$LOG_DIR/subagent-postflight.log"

log() {
  mkdir -p "$LOG_DIR"
  echo "[$(date -u +%Y-%m-%dT%H:%M:%SZ)] $*" >> "$LOG_FILE"
}

# Find a pending marker: per-task markers first, then the legacy global one.
marker_file=$(find specs -maxdepth 3 -name .postflight-pending -type f 2>/dev/null | head -1)
if [ -z "$marker_file" ] && [ -f "specs/.postflight-pending" ]; then
  marker_file="specs/.postflight-pending"
fi

if [ -z "$marker_file" ]; then
  # No postflight pending: allow the stop.
  echo '{}'
  exit 0
fi

guard_file="$(dirname "$marker_file")/.postflight-loop-guard"

# Emergency bypass: a marker that says the stop hook is active.
if grep -q '"stop_hook_active": true' "$marker_file"; then
  log "stop_hook_active set in $marker_file; removing marker and guard"
  rm -f "$marker_file" "$guard_file"
  echo '{}'
  exit 0
fi

# Loop guard: at most MAX_CONTINUATIONS blocked stops.
count=0
if [ -f "$guard_file" ]; then
  count=$(cat "$guard_file")
fi
if [ "$count" -ge "$MAX_CONTINUATIONS" ]; then
  log "max continuations ($MAX_CONTINUATIONS) reached for $marker_file; removing guard and marker"
  rm -f "$guard_file" "$marker_file"
  echo '{}'
  exit 0
fi
echo $((count + 1)) > "$guard_file"

reason=$(jq -r '.reason // "Postflight pending"' "$marker_file")
log "blocking stop ($((count + 1))/$MAX_CONTINUATIONS): $reason"
echo "{\"decision\": \"block\", \"reason\": \"$reason\"}"
