#!/usr/bin/env bash
# The peer: skill-implementer of benbrastmckie/ProofChecker (../shared/seeds/004_*.txt) as one
# bash script, stage by stage, with the seed's jq filters in the seed's order and its git
# commands, so `xtask bench` can time the original workflow against ours on the same repository.
# See README.md in this directory for what is taken verbatim and what had to be modelled.
#
# Usage (from the repository root):
#   skill-implementer.sh implement N    stages 1-11 (GATE IN session id, preflight, agent, postflight)
#   skill-implementer.sh preflight N    stages 1-5 (through the agent), variables saved to $PEER_VARS
#   skill-implementer.sh postflight N   stages 6-10, variables restored from $PEER_VARS
#   skill-implementer.sh marker N       stages 1-4 only (for the stop-hook benchmark)
# Environment:
#   PEER_AGENT      the subagent command (stands in for the Task tool), run with `sh -c`
#   PEER_VARS       where the variables the LLM would keep in its context are saved between halves
#   MAX_ITERATIONS  the handoff loop's limit (default 5), as in the seed

mode="$1"
task_number="$2"

# ---------------------------------------------------------------------------------------------
# GATE IN of commands/implement.md (reference §2.6): the session id the skill receives.
gate_in() {
  session_id="sess_$(date +%s)_$(od -An -N3 -tx1 /dev/urandom | tr -d ' ')"
}

# ---------------------------------------------------------------------------------------------
# Stage 1: Input Validation
stage1() {
  # Lookup task
  task_data=$(jq -r --argjson num "$task_number" \
    '.active_projects[] | select(.project_number == $num)' \
    specs/state.json)

  # Validate exists
  if [ -z "$task_data" ]; then
    echo "Task $task_number not found" >&2
    exit 1
  fi

  # Extract fields
  language=$(echo "$task_data" | jq -r '.language // "general"')
  status=$(echo "$task_data" | jq -r '.status')
  project_name=$(echo "$task_data" | jq -r '.project_name')
  description=$(echo "$task_data" | jq -r '.description // ""')

  # Validate status
  if [ "$status" = "completed" ]; then
    echo "Task already completed" >&2
    exit 1
  fi
}

# The Edit tool's change of a TODO.md status marker, as one in-place edit of the task's block.
todo_set_marker() {
  sed -i "/^### ${task_number}\. /,/^---\$/ s/^- \*\*Status\*\*: \[[A-Z ]*\]/- **Status**: [$1]/" specs/TODO.md
}

# ---------------------------------------------------------------------------------------------
# Stage 2: Preflight Status Update
stage2() {
  jq --arg ts "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
     --arg status "implementing" \
     --arg sid "$session_id" \
    '(.active_projects[] | select(.project_number == '$task_number')) |= . + {
      status: $status,
      last_updated: $ts,
      session_id: $sid,
      started: $ts
    }' specs/state.json > /tmp/state.json && mv /tmp/state.json specs/state.json

  # Update TODO.md: Use Edit tool to change status marker from [PLANNED] to [IMPLEMENTING].
  todo_set_marker "IMPLEMENTING"

  # Call centralized helper script
  .claude/scripts/update-plan-status.sh "$task_number" "$project_name" "IMPLEMENTING"
}

# ---------------------------------------------------------------------------------------------
# Stage 3: Create Postflight Marker
stage3() {
  # Ensure task directory exists
  mkdir -p "specs/${task_number}_${project_name}"

  cat > "specs/${task_number}_${project_name}/.postflight-pending" << EOF
{
  "session_id": "${session_id}",
  "skill": "skill-implementer",
  "task_number": ${task_number},
  "operation": "implement",
  "reason": "Postflight pending: status update, artifact linking, git commit",
  "created": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "stop_hook_active": false
}
EOF
}

# ---------------------------------------------------------------------------------------------
# Stage 4: Prepare Delegation Context (the LLM writes it into the Task prompt; no process).
stage4() {
  padded=$(printf '%03d' "$task_number")
  delegation_context="{
  \"session_id\": \"${session_id}\",
  \"delegation_depth\": 1,
  \"delegation_path\": [\"orchestrator\", \"implement\", \"skill-implementer\"],
  \"timeout\": 7200,
  \"task_context\": {
    \"task_number\": ${task_number},
    \"task_name\": \"${project_name}\",
    \"description\": \"${description}\",
    \"language\": \"${language}\"
  },
  \"plan_path\": \"specs/${padded}_${project_name}/plans/implementation-001.md\",
  \"metadata_file_path\": \"specs/${padded}_${project_name}/.return-meta.json\",
  \"iteration\": 1,
  \"resume_phase\": null,
  \"handoff_path\": null
}"
}

# ---------------------------------------------------------------------------------------------
# Stage 5: Invoke Subagent (the Task tool; here the scripted agent command).
stage5() {
  SUBAGENT_TEXT_RETURN=$(XTASK_DELEGATION="$delegation_context" sh -c "$PEER_AGENT" < /dev/null)

  # Stage 5a: Validate Subagent Return Format
  subagent_return="$SUBAGENT_TEXT_RETURN"
  if echo "$subagent_return" | grep -q '^{' && echo "$subagent_return" | jq empty 2>/dev/null; then
      echo "WARNING: Subagent returned JSON to console instead of writing metadata file."
      echo "This indicates the agent may have outdated instructions (v1 pattern instead of v2)."
      echo "The skill will continue by reading the metadata file, but this should be fixed."
  fi
}

# ---------------------------------------------------------------------------------------------
# Stage 6: Parse Subagent Return (Read Metadata File)
stage6() {
  metadata_file="specs/${task_number}_${project_name}/.return-meta.json"

  if [ -f "$metadata_file" ] && jq empty "$metadata_file" 2>/dev/null; then
      status=$(jq -r '.status' "$metadata_file")
      artifact_path=$(jq -r '.artifacts[0].path // ""' "$metadata_file")
      artifact_type=$(jq -r '.artifacts[0].type // ""' "$metadata_file")
      artifact_summary=$(jq -r '.artifacts[0].summary // ""' "$metadata_file")
      phases_completed=$(jq -r '.metadata.phases_completed // 0' "$metadata_file")
      phases_total=$(jq -r '.metadata.phases_total // 0' "$metadata_file")

      # Extract completion_data fields (if present)
      completion_summary=$(jq -r '.completion_data.completion_summary // ""' "$metadata_file")
      claudemd_suggestions=$(jq -r '.completion_data.claudemd_suggestions // ""' "$metadata_file")
      roadmap_items=$(jq -c '.completion_data.roadmap_items // []' "$metadata_file")
  else
      echo "Error: Invalid or missing metadata file"
      status="failed"
  fi
}

# ---------------------------------------------------------------------------------------------
# Stage 6a: Continuous Handoff Loop
stage6a() {
  # Create or read loop guard
  loop_guard_file="specs/${task_number}_${project_name}/.postflight-loop-guard"
  if [ -f "$loop_guard_file" ]; then
      iteration_count=$(cat "$loop_guard_file")
  else
      iteration_count=0
  fi
  max_iterations=${MAX_ITERATIONS:-5}

  # Enter loop (loop body starts here, checked each iteration)
  while true; do
      iteration_count=$((iteration_count + 1))
      echo "$iteration_count" > "$loop_guard_file"

      # Already have status from Stage 6
      requires_review=$(jq -r '.requires_user_review // false' "$metadata_file")
      handoff_path=$(jq -r '.partial_progress.handoff_path // ""' "$metadata_file")

      # Stop condition: implemented (success)
      if [ "$status" == "implemented" ]; then
          break
      fi

      # Stop condition: hard failure
      if [ "$status" == "blocked" ] || [ "$status" == "failed" ]; then
          break
      fi

      # Stop condition: partial but requires user review
      if [ "$status" == "partial" ] && [ "$requires_review" == "true" ]; then
          echo "Partial completion requires user review - exiting loop"
          break
      fi

      # Stop condition: iteration limit reached
      if [ "$status" == "partial" ] && [ "$iteration_count" -ge "$max_iterations" ]; then
          echo "Max iterations ($max_iterations) reached - exiting loop"
          break
      fi

      # If partial and not blocked, re-invoke subagent
      if [ "$status" == "partial" ]; then
          echo "Iteration $iteration_count: Partial completion, auto-resuming..."

          # Commit iteration progress before re-invocation
          git add \
            "specs/${task_number}_${project_name}/summaries/" \
            "specs/${task_number}_${project_name}/plans/" \
            "specs/${task_number}_${project_name}/.return-meta.json"
          git commit -m "task ${task_number}: iteration ${iteration_count} partial progress

Session: ${session_id}

Co-Authored-By: Claude Opus 4.5 <noreply@anthropic.com>" || true

          # Update delegation context with resume info
          resume_phase=$((phases_completed + 1))

          # Re-invoke subagent (same as Stage 5) with updated context
          stage5

          if [ -f "$metadata_file" ] && jq empty "$metadata_file" 2>/dev/null; then
              status=$(jq -r '.status' "$metadata_file")
              phases_completed=$(jq -r '.metadata.phases_completed // 0' "$metadata_file")
              phases_total=$(jq -r '.metadata.phases_total // 0' "$metadata_file")
              completion_summary=$(jq -r '.completion_data.completion_summary // ""' "$metadata_file")
              claudemd_suggestions=$(jq -r '.completion_data.claudemd_suggestions // ""' "$metadata_file")
              roadmap_items=$(jq -c '.completion_data.roadmap_items // []' "$metadata_file")
          else
              echo "Error: Invalid or missing metadata file after re-invocation"
              status="failed"
              break
          fi

          continue
      fi

      # Unknown status - exit loop
      break
  done
}

# ---------------------------------------------------------------------------------------------
# Stage 7: Update Task Status (Postflight)
stage7() {
  if [ "$status" = "implemented" ]; then
    # Step 1: Update status and timestamps
    jq --arg ts "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
       --arg status "completed" \
      '(.active_projects[] | select(.project_number == '$task_number')) |= . + {
        status: $status,
        last_updated: $ts,
        completed: $ts
      }' specs/state.json > /tmp/state.json && mv /tmp/state.json specs/state.json

    # Step 2: Add completion_summary (always required for completed tasks)
    if [ -n "$completion_summary" ]; then
        jq --arg summary "$completion_summary" \
          '(.active_projects[] | select(.project_number == '$task_number')).completion_summary = $summary' \
          specs/state.json > /tmp/state.json && mv /tmp/state.json specs/state.json
    fi

    # Step 3: Add language-specific completion fields
    # For meta tasks: add claudemd_suggestions
    if [ "$language" = "meta" ] && [ -n "$claudemd_suggestions" ]; then
        jq --arg suggestions "$claudemd_suggestions" \
          '(.active_projects[] | select(.project_number == '$task_number')).claudemd_suggestions = $suggestions' \
          specs/state.json > /tmp/state.json && mv /tmp/state.json specs/state.json
    fi

    # For non-meta tasks: add roadmap_items (if present and non-empty)
    if [ "$language" != "meta" ] && [ "$roadmap_items" != "[]" ] && [ -n "$roadmap_items" ]; then
        jq --argjson items "$roadmap_items" \
          '(.active_projects[] | select(.project_number == '$task_number')).roadmap_items = $items' \
          specs/state.json > /tmp/state.json && mv /tmp/state.json specs/state.json
    fi

    # Update TODO.md: Change status marker from [IMPLEMENTING] to [COMPLETED].
    todo_set_marker "COMPLETED"

    # Call centralized helper script
    .claude/scripts/update-plan-status.sh "$task_number" "$project_name" "COMPLETED"
  elif [ "$status" = "partial" ]; then
    jq --arg ts "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
       --argjson phase "$phases_completed" \
      '(.active_projects[] | select(.project_number == '$task_number')) |= . + {
        last_updated: $ts,
        resume_phase: ($phase + 1)
      }' specs/state.json > /tmp/state.json && mv /tmp/state.json specs/state.json

    # TODO.md stays as [IMPLEMENTING].

    # Call centralized helper script
    .claude/scripts/update-plan-status.sh "$task_number" "$project_name" "PARTIAL"
  fi
  # On failed: Keep status as "implementing" for retry. Do not update plan file.
}

# ---------------------------------------------------------------------------------------------
# Stage 8: Link Artifacts
stage8() {
  # Find summary artifact in metadata (regardless of status)
  summary_artifact_path=$(jq -r '.artifacts[] | select(.type == "summary") | .path // ""' "$metadata_file" | head -1)
  summary_artifact_summary=$(jq -r '.artifacts[] | select(.type == "summary") | .summary // ""' "$metadata_file" | head -1)

  if [ -n "$summary_artifact_path" ]; then
      # Step 1: Filter out existing summary artifacts (use "| not" pattern to avoid != escaping - Issue #1132)
      jq '(.active_projects[] | select(.project_number == '$task_number')).artifacts =
          [(.active_projects[] | select(.project_number == '$task_number')).artifacts // [] | .[] | select(.type == "summary" | not)]' \
        specs/state.json > /tmp/state.json && mv /tmp/state.json specs/state.json

      # Step 2: Add new summary artifact
      jq --arg path "$summary_artifact_path" \
         --arg summary "$summary_artifact_summary" \
        '(.active_projects[] | select(.project_number == '$task_number')).artifacts += [{"path": $path, "type": "summary", "summary": $summary}]' \
        specs/state.json > /tmp/state.json && mv /tmp/state.json specs/state.json
  fi

  # Also link implementation artifacts if present
  if [ -n "$artifact_path" ] && [ "$artifact_type" != "summary" ]; then
      jq --arg path "$artifact_path" \
         --arg type "$artifact_type" \
         --arg summary "$artifact_summary" \
        '(.active_projects[] | select(.project_number == '$task_number')).artifacts += [{"path": $path, "type": $type, "summary": $summary}]' \
        specs/state.json > /tmp/state.json && mv /tmp/state.json specs/state.json
  fi

  # Update TODO.md (for both implemented AND partial): Add summary artifact link (the Edit tool).
  if [ -n "$summary_artifact_path" ] && { [ "$status" = "implemented" ] || [ "$status" = "partial" ]; }; then
      summary_name="${summary_artifact_path##*/}"
      sed -i "/^### ${task_number}\. /,/^---\$/ {
/^- \*\*Summary\*\*:/d
/^- \*\*Plan\*\*:/a\\
- **Summary**: [${summary_name}](${summary_artifact_path})
}" specs/TODO.md
  fi
}

# ---------------------------------------------------------------------------------------------
# Stage 9: Git Commit
stage9() {
  # Stage task-specific files (summaries, plans, metadata)
  git add \
    "specs/${task_number}_${project_name}/summaries/" \
    "specs/${task_number}_${project_name}/plans/" \
    "specs/${task_number}_${project_name}/.return-meta.json" \
    "specs/TODO.md" \
    "specs/state.json"

  # Stage implementation files based on language (general: files specified in plan; here the
  # implementation artifact the agent reported).
  implementation_files=()
  if [ -n "$artifact_path" ] && [ "$artifact_type" != "summary" ]; then
      implementation_files=("$artifact_path")
  fi
  if [ "${#implementation_files[@]}" -gt 0 ]; then
      git add "${implementation_files[@]}"
  fi

  git commit -m "task ${task_number}: complete implementation

Session: ${session_id}

Co-Authored-By: Claude Opus 4.5 <noreply@anthropic.com>" > /dev/null || echo "git commit failed (non-blocking)"
}

# ---------------------------------------------------------------------------------------------
# Stage 10: Cleanup
stage10() {
  rm -f "specs/${task_number}_${project_name}/.postflight-pending"
  rm -f "specs/${task_number}_${project_name}/.postflight-loop-guard"
  rm -f "specs/${task_number}_${project_name}/.return-meta.json"
}

# Stage 11: Return Brief Summary
stage11() {
  echo "Implementation completed for task ${task_number}:"
  echo "- All ${phases_total} phases executed successfully"
  echo "- Created summary at ${summary_artifact_path}"
  echo "- Status updated to [COMPLETED]"
  echo "- Changes committed with session ${session_id}"
}

# The variables the orchestrating LLM keeps in its context between the two halves.
save_vars() {
  declare -p task_number session_id language status project_name description > "$PEER_VARS"
}

case "$mode" in
  implement)
    gate_in; stage1; stage2; stage3; stage4; stage5
    stage6; stage6a; stage7; stage8; stage9; stage10; stage11
    ;;
  preflight)
    gate_in; stage1; stage2; stage3; stage4; stage5
    save_vars
    ;;
  postflight)
    # shellcheck disable=SC1090
    source "$PEER_VARS"
    stage6; stage6a; stage7; stage8; stage9; stage10; stage11
    ;;
  marker)
    gate_in; stage1; stage2; stage3; stage4
    save_vars
    ;;
  *)
    echo "usage: skill-implementer.sh implement|preflight|postflight|marker N" >&2
    exit 2
    ;;
esac
