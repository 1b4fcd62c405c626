#!/bin/sh
# The instant scripted agent both sides run (`xtask implement --agent` and the peer's Task tool):
# it copies the prepared work (an implementation file, the phase summary and the metadata) from
# $BENCH_PAYLOAD into the repository, marks the plan's phases [COMPLETED] in $BENCH_PLAN, and
# returns a brief text summary, as the seed's subagent does.
set -e
# Run by hand without the bench's environment, an empty BENCH_PAYLOAD would copy the whole file
# system (`cp -R /. .`) into the repository: refuse instead.
: "${BENCH_PAYLOAD:?BENCH_PAYLOAD is not set: run this agent through xtask bench}"
: "${BENCH_PLAN:?BENCH_PLAN is not set: run this agent through xtask bench}"
test -d "$BENCH_PAYLOAD" || { echo "BENCH_PAYLOAD=$BENCH_PAYLOAD is not a directory" >&2; exit 2; }
cp -R "$BENCH_PAYLOAD/." .
sed -i 's/^\(### Phase [^[]*\) \[NOT STARTED\]$/\1 [COMPLETED]/' "$BENCH_PLAN"
echo "Implementation completed for task $BENCH_TASK: all phases done, summary and metadata written."
