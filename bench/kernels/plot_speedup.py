#!/usr/bin/env python3
"""Plot speedup over cuBLAS fp16 vs M from bench_gemm_kernels JSON. usage: plot_speedup.py IN.json OUT.png"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

data = json.load(open(sys.argv[1]))
rows = [r for r in data["results"] if r["bits"] == 4 and r["group"] == 128 and r["variant"] == "asym"]
fig, ax = plt.subplots(figsize=(8, 5))
for (K, N) in sorted({(r["K"], r["N"]) for r in rows}):
    pts = sorted((r["M"], r["speedup"]) for r in rows if (r["K"], r["N"]) == (K, N))
    ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"4-bit g128, K={K} N={N}")
tgt = [(1, 3.5), (16, 3.5), (64, 2.5), (128, 1.5), (1024, 0.95), (4096, 0.95)]
ax.plot([t[0] for t in tgt], [t[1] for t in tgt], "k--", alpha=0.5, label="issue targets")
ideal = 2.0 / (0.5 + 2.0 / 128 * 1.5)  # 4-bit + fp16 scale + uint8 zero per 128 weights
ax.axhline(ideal, color="gray", ls=":", label=f"memory-bound ideal {ideal:.2f}x")
ax.axhline(1.0, color="red", lw=0.8)
ax.set_xscale("log", base=2)
ax.set_xlabel("M (tokens)")
ax.set_ylabel("speedup over cuBLAS fp16")
ax.set_title(f"lowbit W4A16 vs cuBLAS fp16 on {data['device']} ({data['date']})")
ax.grid(True, which="both", alpha=0.3)
ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=120)
print("wrote", sys.argv[2])
