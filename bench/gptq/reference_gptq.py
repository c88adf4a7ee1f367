#!/usr/bin/env python3
"""Straightforward PyTorch transcription of the published GPTQ algorithm (arXiv 2210.17323), the
baseline for bench_gptq_gpu. Written for lowbit from the paper's description: per-column Python loop
inside blocks of 128 columns, lazy batch update after each block, group parameters at each group start,
act-order by descending diag(H), damping 0.01 * mean(diag H). Scales are rounded to fp16 (as lowbit and
GPTQ checkpoints store them) so both sides quantize on the same grid.

usage: reference_gptq.py DUMP_DIR OURS.jsonl OUT.json
  reads DUMP_DIR/H_<K>.f32, DUMP_DIR/W_<N>x<K>.f32 for every line of OURS.jsonl (bench_gptq_gpu output),
  times the PyTorch solve (H given) and the PyTorch Hessian accumulation, computes tr(dW H dW^T) and
  writes OUT.json with both sides, speedups and the relative error difference.
"""
import json
import math
import sys
import time

import numpy as np
import torch


def find_params(x, bits, sym):
    """Published min-max quantizer per row of x [rows, g]; returns scale, zero [rows, 1]."""
    maxq = 2 ** bits - 1
    zero_t = torch.zeros(x.shape[0], device=x.device)
    xmin = torch.minimum(x.min(1).values, zero_t)
    xmax = torch.maximum(x.max(1).values, zero_t)
    if sym:
        xmax = torch.maximum(xmin.abs(), xmax)
        neg = xmin < 0
        xmin = torch.where(neg, -xmax, xmin)
    both0 = (xmin == 0) & (xmax == 0)
    xmin = torch.where(both0, torch.full_like(xmin, -1.0), xmin)
    xmax = torch.where(both0, torch.full_like(xmax, 1.0), xmax)
    scale = (xmax - xmin) / maxq
    zero = torch.full_like(scale, (maxq + 1) / 2) if sym else torch.round(-xmin / scale)
    scale = scale.half().float()  # fp16 storage step (lowbit does the same)
    scale = torch.where(scale == 0, torch.full_like(scale, 2.0 ** -24), scale)
    return scale.unsqueeze(1), zero.unsqueeze(1)


def quantize(x, scale, zero, maxq):
    q = torch.clamp(torch.round(x / scale) + zero, 0, maxq)
    return scale * (q - zero)


def gptq(W, H, bits=4, groupsize=128, act_order=False, blocksize=128, percdamp=0.01, sym=False):
    W = W.clone().float()
    H = H.clone()
    N, K = W.shape
    maxq = 2 ** bits - 1
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    perm = None
    if act_order:
        perm = torch.argsort(torch.diag(H), descending=True, stable=True)
        W = W[:, perm]
        H = H[perm][:, perm]
    damp = percdamp * torch.mean(torch.diag(H))
    idx = torch.arange(K, device=W.device)
    H[idx, idx] += damp
    L = torch.linalg.cholesky(H)
    Hinv = torch.cholesky_inverse(L)
    Hinv = torch.linalg.cholesky(Hinv, upper=True)
    Q = torch.zeros_like(W)
    losses = torch.zeros(N, device=W.device)
    scale = zero = None
    for i1 in range(0, K, blocksize):
        i2 = min(i1 + blocksize, K)
        count = i2 - i1
        W1 = W[:, i1:i2].clone()
        Q1 = torch.zeros_like(W1)
        Err1 = torch.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        for i in range(count):
            w = W1[:, i]
            d = Hinv1[i, i]
            if (i1 + i) % groupsize == 0:
                # group == block here: W1 holds the current values of the whole group
                scale, zero = find_params(W1[:, i:i + groupsize], bits, sym)
            q = quantize(w.unsqueeze(1), scale, zero, maxq).flatten()
            Q1[:, i] = q
            losses += (w - q) ** 2 / d ** 2
            err1 = (w - q) / d
            W1[:, i:] -= err1.unsqueeze(1).matmul(Hinv1[i, i:].unsqueeze(0))
            Err1[:, i] = err1
        Q[:, i1:i2] = Q1
        W[:, i2:] -= Err1.matmul(Hinv[i1:i2, i2:])
    if act_order:
        Q = Q[:, torch.argsort(perm)]
    return Q, losses.sum().item() / 2


def hessian_torch(K, batches, tokens, device):
    """Published add_batch loop (fp32) over `batches` random fp16 batches of `tokens` rows."""
    H = torch.zeros(K, K, device=device)
    n = 0
    pool = [torch.randn(tokens, K, device=device, dtype=torch.float16) for _ in range(4)]
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for b in range(batches):
        inp = pool[b % 4]
        H *= n / (n + tokens)
        n += tokens
        x = math.sqrt(2 / n) * inp.float()
        H += x.t().matmul(x)
    torch.cuda.synchronize()
    return time.perf_counter() - t0


def output_error(W, Q, H):
    D = (W - Q).double()
    return ((D @ H.double()) * D).sum().item()


VARIANTS = (("inverse_free", "solve_s_inverse_free", "err_gptq_inverse_free"),
            ("tf32_update", "solve_s_tf32_update", "err_gptq_tf32_update"),
            ("cusolver_trtri", "solve_s_cusolver_trtri", "err_gptq_cusolver_trtri"),
            ("recursive_trsm", "solve_s_recursive_trsm", "err_gptq_recursive_trsm"))


def add_variants(row, t_solve, err):
    """Speedup and error difference vs PyTorch of each variant measured in the same run, plus derived
    rates: update GEMM TFLOP/s = 2 N sum_blocks 128 (K - i2) / (near + far), potrf and inverse TFLOP/s
    with K^3/3 flops each (H100 SXM fp32 non-tensor peak ~67)."""
    for key, tk, ek in VARIANTS:
        if tk in row:
            row["speedup_solve_" + key] = t_solve / row[tk]
            row["err_rel_diff_" + key + "_vs_torch"] = (row[ek] - err) / err
    ph = row.get("phases_s")
    if ph:
        N, K = row["N"], row["K"]
        upd = 2 * N * sum(128 * (K - min(K, i1 + 128)) for i1 in range(0, K, 128))
        cube = K ** 3 / 3
        d = {"update_gemm_tflops": upd / (ph["near_updates"] + ph["far_updates"]) / 1e12,
             "potrf_plus_gather_tflops": cube / ph["factorize"] / 1e12,
             "inverse_tflops": cube / ph["inverse"] / 1e12,
             "inverse_share_of_solve": ph["inverse"] / sum(ph.values())}
        for key in ("cusolver_trtri", "recursive_trsm"):
            if row.get("inverse_s_" + key):
                d["inverse_tflops_" + key] = cube / row["inverse_s_" + key] / 1e12
        row["derived"] = d


def targets(rows, large):
    """The issue's targets against this run's figures (8192 x 8192 solve <= 0.1 s, the tighter 0.05 s, and
    >= 30x the PyTorch transcription with the same output error +-0.5 %; K = 53248 within an 80 GB card)."""
    out = []
    for r in rows:
        if r["N"] == 8192 and r["K"] == 8192:
            out.append({"what": f"8192x8192 solve, act_order {r['act_order']}", "solve_s": r["solve_s"],
                        "target_s": 0.1, "tighter_target_s": 0.05, "speedup_vs_torch": r["speedup_solve"],
                        "target_speedup": 30, "err_rel_diff_vs_torch": r["err_rel_diff_vs_torch"],
                        "met": r["solve_s"] <= 0.05 and r["speedup_solve"] >= 30
                        and abs(r["err_rel_diff_vs_torch"]) <= 0.005})
    for g in large:
        out.append({"what": f"K={g['K']} N={g['N']} solve on an 80 GB card, act_order {g['act_order']}",
                    "solve_s": g["solve_s"], "mem_peak_used_bytes": g["mem_peak_used_bytes"],
                    "mem_total_bytes": g["mem_total_bytes"],
                    "peak_over_2H_plus_W": g["peak_minus_before_over_2H_plus_W"],
                    "met": g["mem_peak_used_bytes"] < 80e9 and g["err_gptq"] < g["err_rtn"]})
    return out


def main():
    dump_dir, ours_path, out_path = sys.argv[1:4]
    assert not torch.backends.cuda.matmul.allow_tf32, "baseline must run in plain fp32"
    dev = torch.device("cuda")
    lines = [json.loads(l) for l in open(ours_path) if l.strip().startswith("{")]
    ours = [o for o in lines if "mode" not in o]
    large = [o for o in lines if o.get("mode") == "large_k"]  # no PyTorch side (H of 11 GiB)
    rows = []
    hess_cache = {}
    # GPTQ_REF_REUSE=PREV.json: for K in GPTQ_REF_REUSE_K (comma list) take the PyTorch figures from an
    # earlier run on the same (deterministically generated) inputs instead of re-running them.
    import os
    reuse = {}
    if os.environ.get("GPTQ_REF_REUSE"):
        keep = {int(k) for k in os.environ.get("GPTQ_REF_REUSE_K", "").split(",") if k}
        for r in json.load(open(os.environ["GPTQ_REF_REUSE"]))["rows"]:
            if r["K"] in keep:
                reuse[(r["N"], r["K"], r["act_order"])] = r
    Xw = torch.randn(1024, 512, device=dev)
    gptq(torch.randn(64, 512, device=dev), 2 * Xw.t() @ Xw / 1024, act_order=True)  # warm-up once
    for o in ours:
        N, K, act = o["N"], o["K"], bool(o["act_order"])
        prev = reuse.get((N, K, o["act_order"]))
        if prev is not None:
            t_solve, loss, err = prev["torch_solve_s"], prev["torch_loss"], prev["torch_err_gptq"]
            t_h, hb = prev["torch_hessian_s"], prev["torch_hessian_batches_measured"]
            row = dict(o)
            row.update({"torch_solve_s": t_solve, "torch_loss": loss, "torch_err_gptq": err, "torch_hessian_s": t_h,
                        "torch_hessian_batches_measured": hb, "torch_from_previous_run": True,
                        "speedup_solve": t_solve / o["solve_s"], "speedup_hessian": t_h / o["hessian_s"],
                        "err_rel_diff_vs_torch": (o["err_gptq"] - err) / err})
            add_variants(row, t_solve, err)
            rows.append(row)
            print(json.dumps(row), flush=True)
            continue
        H = torch.from_numpy(np.fromfile(f"{dump_dir}/H_{K}.f32", dtype=np.float32).reshape(K, K)).to(dev)
        W = torch.from_numpy(np.fromfile(f"{dump_dir}/W_{N}x{K}.f32", dtype=np.float32).reshape(N, K)).to(dev)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        Q, loss = gptq(W, H, act_order=act)
        torch.cuda.synchronize()
        t_solve = time.perf_counter() - t0
        err = output_error(W, Q, H)
        if K not in hess_cache:
            batches = 128 if K <= 8192 else 16  # fp32 XᵀX at K=28672 costs ~8 s for 128 batches
            t = hessian_torch(K, batches, 2048, dev)
            hess_cache[K] = (t * 128 / batches, batches)
        t_h, hb = hess_cache[K]
        row = dict(o)
        row.update({
            "torch_solve_s": t_solve,
            "torch_loss": loss,
            "torch_err_gptq": err,
            "torch_hessian_s": t_h,
            "torch_hessian_batches_measured": hb,
            "speedup_solve": t_solve / o["solve_s"],
            "speedup_hessian": t_h / o["hessian_s"],
            "err_rel_diff_vs_torch": (o["err_gptq"] - err) / err,
        })
        add_variants(row, t_solve, err)
        rows.append(row)
        print(json.dumps(row), flush=True)
        del H, W, Q
        torch.cuda.empty_cache()
    result = {
        "benchmark": "gptq solve (H given) and Hessian accumulation, lowbit GPU vs PyTorch transcription",
        "date": "2026-11-22",
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(0),
        "notes": [
            "shapes are N x K with W [N, K]; 8192 x 28672 is the down-projection (K = 28672 input features)",
            "4-bit, group 128, asymmetric, block 128, damp 0.01; act_order 0/1",
            "solve_s: lowbit gptq_solve_gpu (min over runs after one warm-up), whole solve incl. factorization; "
            "default inverse = recursive_gemm (triangular_gpu.cuh: recursive halving, 128-leaves inverted by one "
            "kernel, off-diagonal blocks -C^-1 B A^-1 by cuBLAS SGEMMs in up to 4 column x 4 row panels)",
            "hessian_s: 128 batches x 2048 fp16 tokens, running-mean XᵀX (cuBLAS fp16 in, fp32 accumulate)",
            "torch_hessian_s at K=28672 measured on 16 batches and scaled to 128",
            "rows with torch_from_previous_run: PyTorch figures from the previous run on identical inputs "
            "(same generator, same H100 type), to save device time",
            "err_*: tr(dW H dW^T) with the same H; err_rel_diff_vs_torch = (ours - torch) / torch",
            "variants measured in the same run: solve_s_cusolver_trtri (cuSOLVER trtri, the previous default), "
            "solve_s_recursive_trsm (recursive inverse, off-diagonal blocks by two in-place cuBLAS trsm), "
            "solve_s_tf32_update (TF32 lazy updates), "
            "solve_s_inverse_free (no triangular inverse); phases_s from CUDA events of one profiled run "
            "(factorize includes the Hessian gather and the info read-back); inverse_s_*: the inverse phase of a "
            "profiled run of that variant",
            "derived: update_gemm_tflops = 2*N*sum(128*(K-i2)) / (near+far update time); potrf/inverse TFLOP/s use "
            "K^3/3 flops each (H100 SXM fp32 non-tensor peak ~67)",
            "large_k: one solve at K = 53248 (H of 11 GiB) with a synthetic SPD H built on the GPU; device memory "
            "from cudaMemGetInfo before allocation, after allocation and polled every ms during the solve",
        ],
        "rows": rows,
        "large_k": large,
        "targets": targets(rows, large),
    }
    with open(out_path, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
