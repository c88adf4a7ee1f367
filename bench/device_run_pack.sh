#!/bin/bash
# Whole-project GPU check from prebuilt sm_90a binaries (bench/make_pack.sh ALL=1 on the workstation), for
# device calls too short to build the project there: every test labelled `gpu` in ctest run directly
# (ctest's files hold the workstation's absolute paths), memcheck + racecheck over each module's reduced
# set (as tests/gpu_verify.sh), racecheck hazards summarised by kernel and source line, then the
# benchmarks (cuBLAS in the same run). Small outputs to $OUT, bulky logs in one logs.tgz.
# usage: run(command="bash bench/device_run_pack.sh", carry=[".deps", "build-allpack"], timeout_s=600)
# env: WALL=seconds (default 330), SKIP="test_a test_b" (tests run on this code before; also skips the
# int8 sanitizer cases when test_int8_gpu is listed)
set -u
OUT=${OUT:-/tmp/out}; L=/tmp/pack-logs; B=/tmp/packbin; mkdir -p "$OUT" "$L" "$B"
PACK=${PACK:-build-allpack}
T0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - T0 )) s] $*" | tee -a "$OUT/summary.txt"; }
WALL=${WALL:-330}   # seconds of wall time the call may use (benches only run in what is left)
left() { echo $(( WALL - ($(date +%s) - T0) )); }
SKIP=" ${SKIP:-} "  # tests already run on this code in an earlier call (names, space-separated)
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/summary.txt"
head -c 400 $PACK/COMMIT | tee -a "$OUT/summary.txt"
tar xJf $PACK/bins.tar.xz -C $B || { echo "unpack failed"; exit 1; }
bin() { find $B -type f -name "$1" -perm -u+x | head -1; }
fails=0
t_run() {  # t_run NAME TIMEOUT ARGS...
  local name=$1 to=$2; shift 2; local b; b=$(bin $name)
  [ -n "$b" ] || { stamp "MISSING $name"; fails=$((fails+1)); return; }
  timeout $to $b "$@" > "$L/$name.log" 2>&1; local rc=$?
  [ $rc = 0 ] || fails=$((fails+1))
  stamp "$( [ $rc = 0 ] && echo PASS || echo FAIL) $name rc=$rc $(grep -E 'test cases' "$L/$name.log" | tail -1)"
  [ $rc = 0 ] || grep -h -B3 -A15 "FAILED" "$L/$name.log" | head -40
}
for t in test_kernels_convert test_kernels_sanitize test_linear test_dequant_gemm test_gptq_gpu \
         test_kernels_gemm_b2_f16 test_kernels_gemm_b2_bf16 test_kernels_gemm_b3_f16 test_kernels_gemm_b3_bf16 \
         test_kernels_gemm_b4_f16 test_kernels_gemm_b4_bf16 test_kernels_gemm_b8_f16 test_kernels_gemm_b8_bf16 \
         test_kernels_midm_b2 test_kernels_midm_b3 test_kernels_midm_b4 test_kernels_midm_b8 test_int8_gpu; do
  case "$SKIP" in *" $t "*) stamp "skip $t (SKIP)"; continue;; esac
  t_run $t 150
done
d=$(bin lowbit); timeout 200 $d demo > "$L/demo.log" 2>&1; rc=$?
if [ $rc = 0 ] && grep -q "GPU W4A16" "$L/demo.log" && ! grep -qE "MISMATCH|none found|skipped| nan| inf| -nan| -inf" "$L/demo.log"; then
  stamp "PASS test_demo_cli_gpu (lowbit demo)"; else stamp "FAIL test_demo_cli_gpu rc=$rc"; fails=$((fails+1)); fi
neg=$(bin test_kernels_pdl_negative); timeout 60 $neg "[pdl]" > "$L/pdl_negative.log" 2>&1; rc=$?
stamp "PDL negative control rc=$rc ($( [ $rc != 0 ] && echo 'fails as it must' || echo 'PASSED: the PDL tests prove nothing'))"
neg=$(bin test_kernels_pdl_negative_gather); timeout 90 $neg "[pdl]" > "$L/pdl_negative_gather.log" 2>&1; rc=$?
stamp "act-order pre-gather PDL negative control rc=$rc, act-order failures $(grep -c ' act 1' "$L/pdl_negative_gather.log") ($( [ $rc != 0 ] && echo 'fails as it must' || echo 'PASSED: the act-order PDL tests prove nothing'))"
san() {  # san TOOL NAME BINARY [ARGS...]
  local tool=$1 name=$2 b; b=$(bin $3); shift 3
  timeout 120 compute-sanitizer --tool $tool --error-exitcode 9 $b "$@" > "$L/${tool}_$name.log" 2>&1; local rc=$?
  [ $rc = 0 ] || fails=$((fails+1))
  stamp "$( [ $rc = 0 ] && echo PASS || echo FAIL) $tool $name rc=$rc: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$L/${tool}_$name.log" | tail -1)"
  if [ $rc != 0 ]; then
    grep -E "Race|Error|Warning|at .* in |by thread|Invalid|Address" "$L/${tool}_$name.log" | sed 's/0x[0-9a-f]*/0x./g' |
      sed 's/([0-9, ]*)/(.)/g' | sort | uniq -c | sort -rn | head -20
  fi
}
for tool in racecheck memcheck; do  # racecheck first: the open question of the first call
  san $tool kernels test_kernels_sanitize
  case "$SKIP" in *" test_int8_gpu "*) ;; *) san $tool int8 test_int8_gpu "[sanitize]";; esac
  san $tool gptq test_gptq_gpu "GPU solver: escalation*,GPU solver status*,GPU Hessian*,GPU triangular inverse*"
  san $tool dequant_gemm test_dequant_gemm "[sanitize]"
  san $tool linear test_linear "[sanitize]"
done
[ $(left) -gt 100 ] && san memcheck demo lowbit demo --n 256 --k 512 --m 64
stamp "tests and sanitizers: failures $fails"
# optional: racecheck of another build's sanitizer binary (e.g. the warp-specialized kernels of wip/ws-kernels)
if [ -x $PACK/extra/test_kernels_sanitize_ws ] && [ $(left) -gt 200 ]; then
  timeout 100 compute-sanitizer --tool racecheck --error-exitcode 9 $PACK/extra/test_kernels_sanitize_ws "[midm]" > $L/racecheck_ws.log 2>&1
  stamp "extra: racecheck ws kernels rc=$? $(grep -E 'RACECHECK SUMMARY' $L/racecheck_ws.log | tail -1)"
  grep -E "Race|Error|Warning|at .* in |by thread" $L/racecheck_ws.log | sed 's/0x[0-9a-f]*/0x./g' | sed 's/([0-9, ]*)/(.)/g' |
    sort | uniq -c | sort -rn | head -24
fi
D=$(date -u +%F); DEV=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '_' | tr -cd 'A-Za-z0-9_-')
[ $(left) -gt 60 ] && { timeout $(( $(left) - 40 )) $(bin bench_midm_kernels) "$OUT/kernels_midm_${DEV}_$D.json" > $L/bench_midm.log 2>&1; stamp "bench_midm rc=$?"; }
[ $(left) -gt 50 ] && { timeout $(( $(left) - 10 )) $(bin bench_int8) "$OUT/int8_${DEV}_$D.json" > $L/bench_int8.log 2>&1; stamp "bench_int8 rc=$?"; }
[ $(left) -gt 40 ] && { timeout $(( $(left) - 3 )) $(bin bench_dequant_gemm) "$OUT/dequant_gemm_${DEV}_$D.json" > $L/bench_dq.log 2>&1; stamp "bench_dequant_gemm rc=$?"; }
grep -E "^4 +128 +asym .* (gemm|wgmma-W64|wgmma-W128) " $L/bench_midm.log 2>/dev/null | head -30
grep -E "^K=.*out= 8" $L/bench_int8.log 2>/dev/null | head -24
tar czf "$OUT/logs.tgz" -C $L . 2>/dev/null
stamp done
