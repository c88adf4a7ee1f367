#!/usr/bin/env python3
"""Converts large_probe logs (bench/probe/large_probe.cu, modes large / large4) into one JSON record: the device from
the log's first line, the date and source logs given, and per row the cuBLAS fp16 and dequantize + cuBLAS times and
each large-M kernel launch (CTA shape where the log names it, plain, PDL) with its ratios against both, all measured in the same run.
usage: large_probe_to_json.py OUT.json DATE LOG [LOG ...]"""
import json
import re
import sys

ROW = re.compile(r"K\s+(\d+) N\s+(\d+) M\s+(\d+): cuBLAS fp16\s+([\d.]+) us, dequant\+cuBLAS\s+([\d.]+) us")
LARGE = re.compile(r"large(128|256d2mc|256d2|256mc|256|-split)?(-pdl)?\s*:\s+([\d.]+) us \(([\d.]+)x cuBLAS, ([\d.]+)x dequant\+cuBLAS\), rel diff ([\d.e+-]+)(.*)")
WIDTH = re.compile(r"== (\d+)-bit g128")


def main():
    out, date, logs = sys.argv[1], sys.argv[2], sys.argv[3:]
    device, rows = None, []
    for log in logs:
        bits, row = None, None
        for line in open(log):
            if line.startswith("device "):
                device = line.split(" ", 1)[1].strip()
            elif m := WIDTH.search(line):
                bits = int(m.group(1))
            elif m := ROW.search(line):
                row = {"log": log.split("/")[-1], "bits": bits, "group": 128, "variant": "asym", "K": int(m.group(1)),
                       "N": int(m.group(2)), "M": int(m.group(3)), "cublas_fp16_us": float(m.group(4)),
                       "dequant_cublas_us": float(m.group(5))}
                row["speedup_dequant_cublas"] = round(row["cublas_fp16_us"] / row["dequant_cublas_us"], 3)
                rows.append(row)
            elif (m := LARGE.search(line)) and row is not None:
                # session 29 logs name the CTA rows (large128 / large256) or the split variant (large-split, wip branch), session
                # 30 the two-k-tile depth and the 2-CTA clusters (large256d2, large256mc, large256d2mc);
                # session 28's had one shape, 128 rows
                key = "large" + (m.group(1) or "").replace("-", "_") + ("_pdl" if m.group(2) else "")
                row[key + "_us"] = float(m.group(3))
                row[key + "_speedup"] = float(m.group(4))
                row[key + "_vs_dequant_cublas"] = float(m.group(5))
                row[key + "_rel_diff_vs_dequant_cublas"] = float(m.group(6))
                row[key + "_mismatch"] = "MISMATCH" in m.group(7)
    json.dump({"device": device, "date": date, "source_logs": [l.split("/")[-1] for l in logs],
               "kernel": "large_wgmma_kernel (include/lowbit/kernels/large_wgmma.cuh), fp16",
               "baseline": "cublasGemmEx fp16 in/out, fp32 compute, TN, same run; dequant_cublas = gemm_dequant (whole weight)",
               "timing": "median of 7 samples of 5 calls (large_probe's time_stream_us); weights not rotated (M >= 128: "
                         "compute-bound)",
               "results": rows}, open(out, "w"), indent=1)


if __name__ == "__main__":
    main()
