#!/usr/bin/env python3
"""Replays make_decode_plan's cost model (include/lowbit/kernels/gemm.cuh) over a decode plan sweep
(bench_gemm_kernels OUT.json --decode-sweep=KxN,... all) and reports, per parameter set, the mean and the
worst ratio of the chosen plan's time to the fastest plan's time (PDL timings), and which choices change.

usage: fit_decode_planner.py SWEEP.json [--cv]

--cv (session 10): adds two per-round terms to the model (a fence per split CTA and a fill per CTA round,
charged ceil(CTAs of the busiest SM / resident CTAs) times), fits all five terms on a grid, and scores the
fit by leave-one-shape-out cross-validation: each shape's choices come from the terms fitted on the other
eleven shapes.

Session 11: the planner also picks two slabs per CTA by a rule (decode_prefers_two_slabs, gemm.cuh); this
script replays only the one-slab model, so it compares one-slab plans (rows with "slabs": 1).

The shared-memory footprints below are decode_smem_bytes<B>(false, 2, M, W) + kSmemReservedPerCta and
the tile bytes DecodeConfig<B>::tile_bytes as of session 9 (printed by a small host program from the
header); refresh them when the decode kernel's ring changes. Splits are capped at 16 as in the sweep.
"""
import json
import sys

SMEM = {
    (2, 1, 4): 38592,
    (2, 1, 8): 76160,
    (2, 1, 16): 151296,
    (2, 4, 4): 48960,
    (2, 4, 8): 96896,
    (2, 4, 16): 192768,
    (2, 8, 4): 62784,
    (2, 8, 8): 124544,
    (2, 8, 16): 248064,
    (2, 16, 4): 75584,
    (2, 16, 8): 150144,
    (2, 16, 16): 299264,
    (3, 1, 4): 42624,
    (3, 1, 8): 84224,
    (3, 1, 16): 167424,
    (3, 4, 4): 51264,
    (3, 4, 8): 101504,
    (3, 4, 16): 201984,
    (3, 8, 4): 62784,
    (3, 8, 8): 124544,
    (3, 8, 16): 248064,
    (3, 16, 4): 68928,
    (3, 16, 8): 136832,
    (3, 16, 16): 272640,
    (4, 1, 4): 42560,
    (4, 1, 8): 84096,
    (4, 1, 16): 167168,
    (4, 4, 4): 49472,
    (4, 4, 8): 97920,
    (4, 4, 16): 194816,
    (4, 8, 4): 58688,
    (4, 8, 8): 116352,
    (4, 8, 16): 231680,
    (4, 16, 4): 58176,
    (4, 16, 8): 115328,
    (4, 16, 16): 229632,
    (8, 1, 4): 56832,
    (8, 1, 8): 112640,
    (8, 1, 16): 224256,
    (8, 4, 4): 62016,
    (8, 4, 8): 123008,
    (8, 4, 16): 244992,
    (8, 8, 4): 68928,
    (8, 8, 8): 136832,
    (8, 8, 16): 272640,
    (8, 16, 4): 82752,
    (8, 16, 8): 164480,
    (8, 16, 16): 327936,
}
TILE = {2: 1024, 3: 1536, 4: 2048, 8: 4096}
SMEM_PER_SM = 233472
SMS = 132


def plan(B, K, N, M, wave, tail, alpha, fence=0.0, fill=0.0):
    slabs, KT = N // 64, K // 64
    best = choice = None
    for W in (16, 8, 4):
        per_sm = min(16 // W, SMEM_PER_SM // SMEM[(B, M, W)])
        if per_sm == 0:
            continue
        slots = SMS * per_sm
        for sp in range(1, min(16, (KT + W - 1) // W) + 1):
            kpw = (KT + W * sp - 1) // (W * sp)
            if (KT + W * kpw - 1) // (W * kpw) != sp:
                continue  # an empty split
            ctas = slabs * sp
            waves = (ctas + slots - 1) // slots
            avg, busiest = ctas / SMS, (ctas + SMS - 1) // SMS
            sm_ctas = max(avg + alpha * (busiest - avg), per_sm)
            cost = sm_ctas * SMS * W * kpw * TILE[B] + ((2.0 * sp * M * N * 4 + tail) if sp > 1 else 0) + wave * waves
            rounds = (-(-ctas // SMS) + per_sm - 1) // per_sm
            cost += rounds * (fill + (fence if sp > 1 else 0.0))
            if best is None or cost < best * 0.999:
                best, choice = cost, (W, sp)
    return choice


def main():
    rows = json.load(open(sys.argv[1]))["rows"]
    # one slab per CTA: the model's plans (sweeps since session 10 also time the two-slab variant)
    t = {(r["bits"], r["K"], r["N"], r["M"], r["warps"], r["splits"]): r["us_pdl"] for r in rows if r.get("slabs", 1) == 1}
    cases = sorted({k[:4] for k in t})
    fastest = {c: min(v for k, v in t.items() if k[:4] == c) for c in cases}

    def score(prm):
        ratios = [t.get(c + plan(*c, *prm), 1.5 * fastest[c]) / fastest[c] for c in cases]
        return sum(ratios) / len(ratios), max(ratios)

    before, after = (4e6, 6e6, 1.0), (4e6, 10e6, 0.75)  # (wave bytes, split tail bytes, busiest-SM weight)
    for name, prm in (("before (session 8)", before), ("after (session 9)", after)):
        print("%-20s mean %.4f worst %.3f over %d cases" % ((name,) + score(prm) + (len(cases),)))
    changed = [(c, plan(*c, *before), plan(*c, *after)) for c in cases if plan(*c, *before) != plan(*c, *after)]
    for c, a, b in changed:
        print("  %s: %s %.2f us -> %s %.2f us" % (c, a, t[c + a], b, t[c + b]))
    grid = [(score((w, tl, al)), w, tl, al) for w in (0, 1e6, 2e6, 4e6, 6e6) for tl in (4e6, 6e6, 8e6, 10e6, 12e6, 15e6)
            for al in (0.5, 0.75, 1.0)]
    print("best of the grid (mean, worst), wave, tail, weight:")
    for g in sorted(grid)[:5]:
        print("  ", g)
    if "--cv" not in sys.argv:
        return
    import itertools
    prms = list(itertools.product((2e6, 4e6, 6e6), (4e6, 6e6, 10e6, 14e6), (0.5, 0.75, 1.0), (0, 2e6, 4e6, 6e6, 9e6),
                                  (0, 1e6, 2e6, 4e6)))
    ratio = {prm: {c: t[c + plan(*c, *prm)] / fastest[c] for c in cases} for prm in prms + [after]}
    best_in = min(prms, key=lambda prm: sum(ratio[prm].values()))
    r = list(ratio[best_in].values())
    print("five terms, fitted on every shape: mean %.4f worst %.3f %s" % (sum(r) / len(r), max(r), best_in))
    held = []
    for shape in sorted({c[1:3] for c in cases}):
        train = [c for c in cases if c[1:3] != shape]
        prm = min(prms, key=lambda p: sum(ratio[p][c] for c in train))
        held += [ratio[prm][c] for c in cases if c[1:3] == shape]
    cur = list(ratio[after].values())
    print("five terms, leave one shape out: mean %.4f worst %.3f (session 9 model, in sample: %.4f / %.3f)"
          % (sum(held) / len(held), max(held), sum(cur) / len(cur), max(cur)))


if __name__ == "__main__":
    main()
