#!/usr/bin/env bash
# run_fault.sh - one fault-injection case: runs fccl_soak with FCCL_FAULT_INJECT set and checks
# how it ended: the soak's exit code (0: every rank finished or, with --expect-killed, named the
# killed rank; 3: clear library errors and no wrong result; never 2 = wrong result, 4 = hang; a
# rank killed by a signal counts only for kill faults),
# that at least MIN ranks printed an error line matching PATTERN, and that no shared-memory
# segment of the run is left in /dev/shm.
#
#   run_fault.sh SOAK FAULT EXPECTED_EXIT PATTERN MIN -- SOAK_ARGS...
set -uo pipefail
soak=$1 fault=$2 want=$3 pattern=$4 min=$5
shift 5
[ "$1" = "--" ] && shift

prefix="fcclfault$$"
out=$(FCCL_FAULT_INJECT="$fault" FCCL_SHM_PREFIX="$prefix" "$soak" "$@" 2>&1)
rc=$?
echo "$out" | grep -E "^SOAK|FCCL_FAULT_INJECT|timed out|closed|exited" | head -40
fail=0
if [ "$rc" -ne "$want" ]; then
  echo "run_fault: FCCL_FAULT_INJECT=$fault: fccl_soak exited $rc, expected $want" >&2
  fail=1
fi
# Exit 3 means "a library error or an unexpected death": only a kill fault may end a rank by a
# signal (the soak's --expect-killed checks which one); with any other fault a crashed, killed or
# unexplained exit of a rank fails the case, whatever the exit code says.
if [[ "$fault" != kill:* ]]; then
  died=$(echo "$out" | grep -E "^rank [0-9]+: (killed by signal|exited with code|killed;|did not finish)")
  if [ -n "$died" ]; then
    echo "run_fault: FCCL_FAULT_INJECT=$fault does not kill, yet a rank died or exited unexplained:" >&2
    echo "$died" >&2
    fail=1
  fi
fi
matches=$(echo "$out" | grep -E "^SOAK rank [0-9]+: error at op" | grep -cE "$pattern")
if [ "$matches" -lt "$min" ]; then
  echo "run_fault: $matches rank error lines match /$pattern/, expected at least $min" >&2
  fail=1
fi
sleep 0.2  # killed processes' mappings go away with them
left=$(ls /dev/shm 2>/dev/null | grep -c "^$prefix" || true)
if [ "$left" -ne 0 ]; then
  echo "run_fault: $left shared-memory segments of this run left in /dev/shm:" >&2
  ls /dev/shm | grep "^$prefix" >&2
  fail=1
fi
[ "$fail" -eq 0 ] && echo "run_fault: FCCL_FAULT_INJECT=$fault ended as expected (exit $rc, $matches matching errors, no segments left)"
exit "$fail"
