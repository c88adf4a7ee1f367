#!/usr/bin/env python3
"""Checks issue 4's targets against a bench_gemm JSON (bench_gemm_kernels' output), with by how much each
missed one is missed and why (roofline figures from the file's own rows).
Usage: summarize_targets.py KERNELS.json [DEQUANT_GEMM.json] [--write]

- The targets are bench_gemm's (`target_speedup` in its rows): 4-bit g128 asym M = 1-16 >= 3.5x on the three large
  shapes, M = 64 >= 2.5x, M = 128 >= 1.5x, M >= 1024 >= 0.95x; 3-bit / 2-bit / 8-bit g128 asym at M = 1 >= 4.5x / 6x /
  1.85x; all against cuBLAS fp16 timed in the same run.
- At M >= 1024 the library's layer (WeightOnlyLinear) dequantizes once and calls cuBLAS instead of running the fused
  kernel that bench_gemm times. A bench_dequant_gemm JSON of the same device (second argument) supplies that path's
  ratio (its own cuBLAS timings), and the target is judged on the faster of the two paths.
- With --write the "targets" list, "targets_met", "targets_total" and "why_targets_are_missed" are added to
  KERNELS.json, written to a temporary file and renamed over it, so a failure leaves it intact.
"""
import json
import os
import sys

args = [a for a in sys.argv[1:] if a != "--write"]
if len(args) not in (1, 2):
    sys.exit(__doc__)
write = "--write" in sys.argv[1:]
path = args[0]
with open(path) as f:
    d = json.load(f)
deq = None
if len(args) == 2:
    with open(args[1]) as f:
        deq = json.load(f)
    if deq.get("device") != d.get("device"):
        sys.exit(f"{args[1]}: device {deq.get('device')!r}, but {path} is {d.get('device')!r}")

copy = d["d2d_copy_GBps"]


def deq_point(K, N, M):
    if deq is None:
        return None
    for p in deq["points"]:
        if (p["K"], p["N"], p["M"]) == (K, N, M):
            return p
    return None


def deq_only(K, N):
    if deq is None:
        return None
    for p in deq.get("dequantize_only", []):
        if (p["K"], p["N"]) == (K, N):
            return p
    return None


def why(r, path_name, p):
    """The reason for a miss, in the row's own numbers."""
    M, K, N = r["M"], r["K"], r["N"]
    ceil = r["ideal_speedup_vs_cublas_roofline"]
    over = r["lowbit_us"] - r["memory_roofline_us"]
    if path_name == "dequantize + cuBLAS":
        o = deq_only(K, N)
        s = (f"dequantize + cuBLAS: cuBLAS fp16 alone takes {p['cublas_fp16_us']:.1f} us of the pair's "
             f"{p['dequant_cublas_us']:.1f} us")
        if o:
            cap = p["cublas_fp16_us"] / (p["cublas_fp16_us"] + o["us"])
            s += (f"; the dequantization pass writes K x N fp16 and takes {o['us']:.1f} us alone "
                  f"({o['fraction_of_copy']:.0%} of the copy bandwidth), so the pair can reach at most {cap:.2f}x. "
                  f"Reaching the target needs a kernel that dequantizes on the fly at cuBLAS's tensor rate; gemm's fused "
                  f"path (the large-M kernel on sm_90a builds, else the tile kernels) reaches {r['speedup']:.2f}x here")
        return s
    if M <= 16:
        s = (f"memory-bound regime: the decode kernel streams the weights at {r['weight_bw_frac_of_copy']:.0%} of the "
             f"measured copy bandwidth ({r['weight_GBps']:.0f} of {copy:.0f} GB/s); the memory roofline allows "
             f"{ceil:.2f}x. The call spends {over:.1f} us ({over / r['lowbit_us']:.0%}) above the roofline: the per-call "
             f"fixed cost (launch, ring fill and drain, CTA reduction; PDL hides part of it) and instruction issue per "
             f"tile (dequantization")
        if M > 8:
            s += ", and at M > 8 a second MMA row block and activation rows as many bytes as a 4-bit weight tile"
        if r["bits"] in (2, 3):
            s += f"; at {r['bits']} bits a byte holds {8 // r['bits'] if r['bits'] == 2 else 8 / 3:.2g} codes to decode"
        return s + ") (bench/kernels/NOTES.md, sessions 3, 14, 16)"
    if M <= 256:
        return (f"issue-bound regime: the memory roofline allows {ceil:.2f}x, but the wgmma mid-M kernel's consumer "
                f"warps run the dequantization and the register-A wgmmas one after the other (session 25, 8192 x 28672 "
                f"M = 64: 81.5 us together against 47.6 us for the wgmmas alone), and staging the dequantized weights "
                f"through shared memory measured 15-20 % slower (bench/kernels/NOTES.md, session 25)")
    return (f"compute-bound regime: gemm's fused path (the large-M kernel on sm_90a builds where its grid fills the "
            f"GPU, else the tile kernels) reaches {r['speedup']:.2f}x of cuBLAS's time; no dequantize + cuBLAS figure "
            f"was given (second argument)")


targets = []
for r in d["results"]:
    t = r.get("target_speedup", 0)
    if not t:
        continue
    measured, path_name, p = r["speedup"], "fused kernel (gemm)", None
    q = deq_point(r["K"], r["N"], r["M"]) if r["M"] >= 1024 else None
    if q and q["speedup_dequant_cublas"] > measured:
        measured, path_name, p = q["speedup_dequant_cublas"], "dequantize + cuBLAS", q
    met = measured >= t
    e = {
        "target": f"{r['bits']}-bit g{r['group']} {r['variant']} >= {t}x cuBLAS fp16",
        "bits": r["bits"], "K": r["K"], "N": r["N"], "M": r["M"], "path": path_name,
        "measured": round(measured, 3), "target_speedup": t, "met": met,
        "memory_roofline_speedup": r["ideal_speedup_vs_cublas_roofline"],
    }
    if not met:
        e["missed_by"] = f"{t / measured:.2f}x ({measured:.2f}x of {t}x)"
        e["why"] = why(r, path_name, p)
    targets.append(e)

met = sum(t["met"] for t in targets)
for t in targets:
    print(f"{t['bits']}-bit K {t['K']:6d} N {t['N']:6d} M {t['M']:5d}  {t['measured']:6.2f}x of {t['target_speedup']:4}x "
          f"{'met' if t['met'] else 'MISSED by ' + t['missed_by'].split()[0]}  [{t['path']}; memory roofline "
          f"{t['memory_roofline_speedup']:.2f}x]")
print(f"{met} of {len(targets)} targets met")

if write:
    d["targets"] = targets
    d["targets_met"] = met
    d["targets_total"] = len(targets)
    d["why_targets_are_missed"] = {
        "M <= 16": "the decode kernel is memory-bound in steady state but pays a per-call fixed cost and is close to "
                   "instruction-issue-bound per tile (see each target's 'why')",
        "16 < M <= 256": "dequantization and register-A wgmmas do not overlap on the consumer warps",
        "M >= 1024": "dequantize + cuBLAS pays a K x N fp16 pass next to the GEMM; the fused large-M kernel (sessions "
                     "28-29, 256 x 128 CTAs) runs at 0.58-0.63x of cuBLAS in bench_gemm (0.63-0.73x in large_probe's "
                     "short runs): a k-tile moves about 150 KB of shared memory (m64n128 operands, staging stores, "
                     "ring fills) and waits at one barrier for every warpgroup's dequantization",
    }
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(d, f, indent=1)
    os.replace(tmp, path)
    print(f"wrote the targets into {path}")
