#!/usr/bin/env bash
# The peer's .claude/scripts/update-plan-status.sh of ProofChecker as reference §7.5 describes it.
#   update-plan-status.sh N SLUG STATUS   set the header status of task N's newest plan
#   update-plan-status.sh --validate N    make the plan header agree with state.json
# Prints the plan path when it changed something, an empty line when there was nothing to do.
# Faithful to its limits: the sed rewrites every `- **Status**: [..]` line that ends with `]`.

VALID_STATUSES=("NOT STARTED" "IN PROGRESS" "IMPLEMENTING" "COMPLETED" "PARTIAL" "BLOCKED"
  "ABANDONED" "PLANNING" "PLANNED" "RESEARCHING" "RESEARCHED" "EXPANDED")

# The newest plan of task $1 with slug $2 (sort -V), else any specs/$1_*/plans/ plan.
find_plan() {
  local n="$1" slug="$2" plan=""
  if [ -n "$slug" ]; then
    plan=$(ls -1 specs/"${n}_${slug}"/plans/implementation-*.md 2>/dev/null | sort -V | tail -1)
  fi
  if [ -z "$plan" ]; then
    plan=$(ls -1 specs/"${n}"_*/plans/implementation-*.md 2>/dev/null | sort -V | tail -1)
  fi
  echo "$plan"
}

# The bracket content of the first `- **Status**:` line.
current_status() {
  grep -m1 '^- \*\*Status\*\*:' "$1" | sed 's/^- \*\*Status\*\*: \[\([^]]*\)\].*$/\1/'
}

apply_status() {
  sed -i "s/^\- \*\*Status\*\*: \[.*\]$/- **Status**: [$2]/" "$1"
}

if [ "$1" = "--validate" ]; then
  n="$2"
  state_status=$(jq -r --argjson num "$n" '.active_projects[] | select(.project_number == $num) | .status' specs/state.json)
  slug=$(jq -r --argjson num "$n" '.active_projects[] | select(.project_number == $num) | .project_name' specs/state.json)
  case "$state_status" in
    not_started) expected="NOT STARTED" ;;
    researching) expected="RESEARCHING" ;;
    researched) expected="RESEARCHED" ;;
    planning) expected="PLANNING" ;;
    planned) expected="PLANNED" ;;
    implementing) expected="IMPLEMENTING" ;;
    completed) expected="COMPLETED" ;;
    partial) expected="PARTIAL" ;;
    blocked) expected="BLOCKED" ;;
    abandoned) expected="ABANDONED" ;;
    expanded) expected="EXPANDED" ;;
    *)
      echo "Warning: unknown state status '$state_status' for task $n" >&2
      echo "ok"
      exit 0
      ;;
  esac
  plan_file=$(find_plan "$n" "$slug")
  if [ -z "$plan_file" ]; then
    echo "ok"
    exit 0
  fi
  current=$(current_status "$plan_file")
  if [ "$current" != "$expected" ]; then
    echo "Warning: plan header [$current] does not match state ($state_status); fixing" >&2
    apply_status "$plan_file" "$expected"
    echo "fixed:$plan_file"
  else
    echo "ok"
  fi
  exit 0
fi

task_number="$1"
project_name="$2"
new_status=$(echo "$3" | tr '[:lower:]' '[:upper:]')

valid=false
for s in "${VALID_STATUSES[@]}"; do
  if [ "$s" = "$new_status" ]; then
    valid=true
  fi
done
if [ "$valid" != true ]; then
  echo "Error: invalid status '$3'" >&2
  exit 1
fi

plan_file=$(find_plan "$task_number" "$project_name")
if [ -z "$plan_file" ] || [ ! -f "$plan_file" ]; then
  echo ""
  exit 0
fi

current=$(current_status "$plan_file")
if [ "$current" = "$new_status" ]; then
  echo ""
  exit 0
fi

apply_status "$plan_file" "$new_status"

after=$(current_status "$plan_file")
if [ "$after" != "$new_status" ]; then
  echo "Warning: $plan_file still says [$after] after the update" >&2
fi
echo "$plan_file"
