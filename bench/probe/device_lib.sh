# Shared preamble of the session-12 device scripts (source it after setting DEADLINE, in seconds, and
# listing the prebuilt folders in DIRS): results go to $OUT (the device tool's folder), logs to /tmp/l,
# packed into $OUT/logs.tgz after every step so a call cut off by its limit still returns them.
#   st MSG        print "[elapsed s] MSG" into $OUT/summary.txt (and pack the logs)
#   left CAP      seconds a step may take: CAP, or what is left of DEADLINE (at least 1)
#   last LOG      a Catch2 log's summary line
set -u
O=$OUT; L=/tmp/l; mkdir -p $L; T0=$(date +%s)
st() { echo "[$(( $(date +%s) - T0 )) s] $*" | tee -a $O/summary.txt; tar czf $O/logs.tgz -C $L . 2>/dev/null; }
left() { local l=$(( DEADLINE - ($(date +%s) - T0) )); (( l > $1 )) && l=$1; (( l < 1 )) && l=1; echo $l; }
last() { grep -E 'test cases|All tests' "$1" | tail -1; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $O/summary.txt
for d in $DIRS; do echo "$d: $(cat $d/COMMIT)" >> $O/summary.txt; done
