#!/bin/bash
# Session 15: the benchmarks of main's kernels from the sm_90a pack (ALL=1 bench/make_pack.sh build-pack
# build-allpack; the pack's COMMIT names the code), cuBLAS in the same run; plots drawn there (matplotlib is
# on the lent machines, not on the workstation):
#   run(command="bash bench/probe/device_s15c.sh", carry=["build-allpack"])
# Asked for with kind="nvidia-h200", it ran on an H100 (that kind may get either card unless needs_h200,
# which is only for work that does not fit 78 GiB). Only a few files come back from a call (the first run lost
# the tune and mid-M JSONs that way), so the JSONs, logs and plots travel in results.tgz.
# The tests and sanitizers of the same pack: WALL=520 bash bench/device_run_pack.sh
# Session 16: TUNE=0 skips the tune run, INT8_CAP sets bench_int8's seconds (default 120).
DEADLINE=${DEADLINE:-570} DIRS="build-allpack"
source bench/probe/device_lib.sh
B=/tmp/packbin; mkdir -p $B; tar xJf build-allpack/bins.tar.xz -C $B || { st "unpack failed"; exit 1; }
bin() { find $B -type f -name "$1" -perm -u+x | head -1; }
D=$(date -u +%F); DEV=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '_' | tr -cd 'A-Za-z0-9_-')
run_bench() {  # NAME CAP BIN ARGS...
  local name=$1 cap=$2 b; b=$(bin $3); shift 3
  timeout $(left $cap) stdbuf -oL $b "$@" > $L/$name.log 2>&1; st "$name rc=$?"; cp $L/$name.log $O/
}
run_bench kernels_${DEV}_$D 200 bench_gemm_kernels $O/kernels_${DEV}_$D.json
[ "${TUNE:-1}" = 1 ] && run_bench kernels_tune_${DEV}_$D 150 bench_gemm_kernels $O/kernels_tune_${DEV}_$D.json --tune
run_bench int8_${DEV}_$D ${INT8_CAP:-120} bench_int8 $O/int8_${DEV}_$D.json
run_bench kernels_midm_${DEV}_$D 90 bench_midm_kernels $O/kernels_midm_${DEV}_$D.json
run_bench dequant_gemm_${DEV}_$D 60 bench_dequant_gemm $O/dequant_gemm_${DEV}_$D.json
for p in "bench/kernels/plot_speedup.py $O/kernels_${DEV}_$D.json $O/kernels_${DEV}_$D.png" \
         "bench/int8/plot_int8.py $O/int8_${DEV}_$D.json $O/int8_${DEV}_$D.png" \
         "bench/kernels/plot_all_m.py $O/kernels_all_M_${DEV}_$D.png $O/kernels_${DEV}_$D.json $O/kernels_midm_${DEV}_$D.json $O/dequant_gemm_${DEV}_$D.json"; do
  python3 $p >> $L/plots.log 2>&1 || st "plot failed: ${p%% *}"
done
res=$(cd $O && ls | grep -vE '^(logs|results)\.tgz$|^summary\.txt$')
tar czf $O/results.tgz -C $O $res 2>/dev/null && (cd $O && rm -f $res)
[ "${TUNE:-1}" = 1 ] && grep -E "^tune 4-bit .*M  1:" $L/kernels_tune_${DEV}_$D.log | cut -c1-200
grep -E "^K=.*out= 8" $L/int8_${DEV}_$D.log | cut -c1-150 | head -24
st done
