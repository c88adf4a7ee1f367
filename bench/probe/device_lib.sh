# Shared preamble of the device scripts (sessions 12-13) (source it after setting DEADLINE, in seconds, and
# listing the prebuilt folders in DIRS): results go to $OUT (the device tool's folder), logs to /tmp/l,
# packed into $OUT/logs.tgz after every step so a call cut off by its limit still returns them.
#   st MSG        print "[elapsed s] MSG" into $OUT/summary.txt (and pack the logs)
#   left CAP      seconds a step may take: CAP, or what is left of DEADLINE (at least 1)
#   last LOG      a Catch2 log's summary line
#   tests NAME CAP BIN [ARGS...]        a Catch2 binary, at most CAP s: log $L/NAME.log, its summary, failures
#   san TOOL NAME CAP BIN [ARGS...]     the same under compute-sanitizer TOOL (memcheck / racecheck)
#   tests_list CAP DIR NAME...          `tests` for each DIR/NAME that exists (at most CAP s each)
#   unpack DIR                          extract DIR/bins.tar.xz (the carried binaries) into DIR
#   neg_gather CAP BIN                  the act-order gather's PDL negative control (must fail, on act-order only)
# Also defined: D (UTC date) and DEV (the GPU's name, for result file names).
set -u
O=$OUT; L=/tmp/l; mkdir -p $L; T0=$(date +%s)
st() { echo "[$(( $(date +%s) - T0 )) s] $*" | tee -a $O/summary.txt; tar czf $O/logs.tgz -C $L . 2>/dev/null; }
left() { local l=$(( DEADLINE - ($(date +%s) - T0) )); (( l > $1 )) && l=$1; (( l < 1 )) && l=1; echo $l; }
last() { grep -E 'test cases|All tests' "$1" | tail -1; }
tests() {
  local name=$1 cap=$2; shift 2
  timeout $(left $cap) "$@" > $L/$name.log 2>&1; st "$name rc=$? $(last $L/$name.log)"
  grep -B5 -A20 "FAILED" $L/$name.log | head -40
}
san() {
  local tool=$1 name=$2 cap=$3; shift 3
  timeout $(left $cap) compute-sanitizer --tool $tool --error-exitcode 9 "$@" > $L/${tool}_$name.log 2>&1
  st "$tool $name rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|test cases' $L/${tool}_$name.log | tail -2 | tr '\n' ' ')"
}
tests_list() {
  local cap=$1 dir=$2 t; shift 2
  for t in "$@"; do [[ -x $dir/$t ]] && tests $t $cap $dir/$t; done
}
unpack() { [ -f "$1/bins.tar.xz" ] && tar xJf "$1/bins.tar.xz" -C "$1"; }
neg_gather() {
  timeout $(left $1) $2 "[pdl]" > $L/pdl_negative_gather.log 2>&1
  st "gather PDL negative control rc=$? (must be nonzero) $(last $L/pdl_negative_gather.log)"
  st "  failed assertions' context lines naming act-order weights: $(grep -c ' act 1' $L/pdl_negative_gather.log), others: $(grep -c ' act 0' $L/pdl_negative_gather.log)"
}
D=$(date -u +%F); DEV=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '_' | tr -cd 'A-Za-z0-9_-')
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $O/summary.txt
for d in $DIRS; do echo "$d: $(cat $d/COMMIT)" >> $O/summary.txt; done
