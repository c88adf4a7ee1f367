#!/usr/bin/env python3
"""Replays make_decode_plan's cost model (include/lowbit/kernels/gemm.cuh) over a decode plan sweep
(bench_gemm_kernels OUT.json --decode-sweep=KxN,... all) and reports, per parameter set, the mean and the
worst ratio of the chosen plan's time to the fastest plan's time (PDL timings), and which choices change.

usage: fit_decode_planner.py SWEEP.json [--cv | --mem-bound [--tune TUNE.json ...]]

--cv (session 10): adds two per-round terms to the model (a fence per split CTA and a fill per CTA round,
charged ceil(CTAs of the busiest SM / resident CTAs) times), fits all five terms on a grid, and scores the
fit by leave-one-shape-out cross-validation: each shape's choices come from the terms fitted on the other
eleven shapes.

Session 11: the planner also picks two slabs per CTA by a rule (decode_prefers_two_slabs, gemm.cuh); this
script replays only the one-slab model, so it compares one-slab plans (rows with "slabs": 1).

Session 14 (--mem-bound): the current model (session 13: kCtaWarps = 0.2 on one-slab plans) against
separate busiest-SM and per-CTA constants for the memory-bound width (8 bits: the tile is more bytes than
16 activation rows, as in decode_prefers_two_slabs); in-sample and leave-one-shape-out scores, 1-D
profiles of each constant, per-width 4-constant fits, the sweep choices that change. With --tune FILE...
it also replays the full planner (two-slab rule; persistence is never planned) over tune_decode result files
(bench_gemm_kernels --tune), checks the replay against their "planned" shapes and lists the cases whose
planned shape would change with every time those files (and the sweep) hold for the old and new shape.

Shared-memory footprints come from the header formulas (decode.cuh: DecodeConfig, decode_slot_bytes,
decode_stages, decode_smem_bytes with the cp.async ring, group 32 (2 groups per tile), persist = false;
device_info.cuh: kSm90SmemPerSm, kSmemReservedPerCta); they equal session 9's printed table byte for byte.
Splits are capped at 16 as in the sweep (the planner allows kMaxDecodeSplits = 64; on the sweep's cases
it never picks more than 16), except in the tune-file replay, which uses 64.
"""
import itertools
import json
import re
import sys

TILE = {2: 1024, 3: 1536, 4: 2048, 8: 4096}  # DecodeConfig<B>::tile_bytes (TiledLayout words x 4)
SMEM_PER_SM = 228 * 1024  # kSm90SmemPerSm
RESERVED = 1024  # kSmemReservedPerCta
SMS = 132
MAX_SPLITS = 16


def decode_stages(B, M):
    """DecodeConfig<B>::cp_async_stages_for(M > 8 ? 2 : 1)"""
    base = 6 if B <= 2 else 5 if B == 3 else 4 if B == 4 else 3
    return base if M <= 8 or base <= 3 else base - 1


def decode_smem_bytes(B, M, W, ns=1, persist=False, gpt=2):
    """decode_smem_bytes<B>(bulk = false, gpt, M, W, ns, persist)"""
    slot = ns * (TILE[B] + gpt * (64 * 2 + 64)) + M * (64 * 2 + 16)
    ring = W * (16 + 8 * 8 + decode_stages(B, M) * slot)
    red = W * M * 64 * ns * 4
    return ring + red if persist else max(ring, red)


def ctas_per_sm(B, M, W, ns=1, persist=False):
    wps = 16 if ns == 1 else 8  # DecodeConfig::warps_per_sm / max_warps_two_slabs
    if W > wps:
        return 0
    return min(wps // W, SMEM_PER_SM // (decode_smem_bytes(B, max(M, 1), W, ns, persist) + RESERVED))


SMEM = {(B, M, W): decode_smem_bytes(B, M, W) + RESERVED for B in TILE for M in (1, 4, 8, 16) for W in (4, 8, 16)}


def mem_bound(B):
    """the width whose 64x64 tile is more bytes than 16 activation rows of 64 k (8 bits)"""
    return TILE[B] > 16 * 64 * 2


def plan(B, K, N, M, wave, tail, alpha, fence=0.0, fill=0.0, ctaw=0.0, alpha_mem=None, ctaw_mem=None,
         max_splits=MAX_SPLITS, ns=1, split_cta=0.0, cta_fix=0.0, gen=0.0, idle=1.0):
    """make_decode_plan's search over (warps, splits) with `ns` slabs per CTA; alpha_mem / ctaw_mem
    (if given) replace alpha / ctaw for the memory-bound width. ctaw is charged on one-slab plans only.
    Trial terms (0 / 1: the planner's model): split_cta bytes per split CTA of the busiest SM, cta_fix bytes
    per CTA of the busiest SM, gen bytes per generation of resident CTAs on the busiest SM, idle the weight
    of the empty resident slots (the planner charges them in full)."""
    if alpha_mem is not None and mem_bound(B):
        alpha = alpha_mem
    if ctaw_mem is not None and mem_bound(B):
        ctaw = ctaw_mem
    if ns != 1:
        ctaw = 0.0
    slabs, KT = N // 64, K // 64
    if slabs % ns:
        return None
    best = choice = None
    for W in (16, 8, 4):
        per_sm = ctas_per_sm(B, M, W, ns)
        if per_sm == 0:
            continue
        slots = SMS * per_sm
        for sp in range(1, (min(max_splits, (KT + W - 1) // W) if slabs <= 8192 else 1) + 1):
            kpw = (KT + W * sp - 1) // (W * sp)
            if (KT + W * kpw - 1) // (W * kpw) != sp:
                continue  # an empty split
            ctas = slabs // ns * sp
            waves = (ctas + slots - 1) // slots
            avg, busiest = ctas / SMS, (ctas + SMS - 1) // SMS
            x = avg + alpha * (busiest - avg)
            sm_ctas = max(x, per_sm) if idle == 1.0 else x + idle * max(per_sm - x, 0)
            cost = sm_ctas * SMS * (W + ctaw) * kpw * TILE[B] * ns + ((2.0 * sp * M * N * 4 + tail) if sp > 1 else 0) + wave * waves
            cost += sm_ctas * SMS * (cta_fix + (split_cta if sp > 1 else 0.0)) + gen * -(-busiest // per_sm)
            rounds = (-(-ctas // SMS) + per_sm - 1) // per_sm
            cost += rounds * (fill + (fence if sp > 1 else 0.0))
            if best is None or cost < best * 0.999:
                best, choice = cost, (W, sp)
    return choice


def load_sweep(path):
    rows = json.load(open(path))["rows"]
    # one slab per CTA: the model's plans (sweeps since session 10 also time the two-slab variant)
    t = {}
    for r in rows:
        if r.get("slabs", 1) == 1:
            k = (r["bits"], r["K"], r["N"], r["M"], r["warps"], r["splits"])
            t[k] = min(t.get(k, 1e30), r["us_pdl"])
    cases = sorted({k[:4] for k in t})
    fastest = {c: min(v for k, v in t.items() if k[:4] == c) for c in cases}
    return t, cases, fastest


def main():
    if "--mem-bound" in sys.argv:
        return mem_bound_main()
    t, cases, fastest = load_sweep(sys.argv[1])

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


# --mem-bound (session 14) --------------------------------------------------------------------------------

CURRENT = dict(wave=4e6, tail=10e6, alpha=0.75, ctaw=0.2)  # make_decode_plan as of session 13/14
PROPOSED = dict(CURRENT, alpha_mem=0.4, ctaw_mem=0.6)  # 8 bits: kBusiestWeight 0.4, kCtaWarps 0.6


def prefers_two_slabs(B, K, N, M):
    """decode_prefers_two_slabs<B>(M, N, K)"""
    slabs, KT = N // 64, K // 64
    return TILE[B] <= 16 * 64 * 2 and M > 8 and slabs % 2 == 0 and slabs * KT >= 20480


def full_plan(B, K, N, M, prm, persist_rule=False):
    """make_decode_plan<B>(M, N, K, 132) with every field free: (warps, splits, slabs, persist 1 off / 2 on);
    persist_rule: the session-14 draft rule (persistent if 1 < slabs / resident CTAs <= 1.25), since dropped"""
    ns = 2 if prefers_two_slabs(B, K, N, M) else 1
    ch = plan(B, K, N, M, max_splits=64, ns=ns, **prm)
    if ch is None:
        ns, ch = 1, plan(B, K, N, M, max_splits=64, **prm)
    W, sp = ch
    KT, slabs, pe = K // 64, N // 64, 1
    if persist_rule and ns == 1 and sp == 1 and M <= 8 and -(-KT // W) * W == KT:
        pm = ctas_per_sm(B, M, W)
        if 1.0 < slabs / (SMS * pm) <= 1.25 and ctas_per_sm(B, M, W, 1, True) == pm:
            pe = 2
    return W, sp, ns, pe


def mem_bound_main():
    t, cases, fastest = load_sweep(sys.argv[1])
    shapes = sorted({c[1:3] for c in cases})
    one = [c for c in cases if not prefers_two_slabs(*c)]  # cases whose plan the one-slab model decides
    memo = {}

    def choice(c, prm):
        key = (c, tuple(sorted(prm.items())))
        if key not in memo:
            memo[key] = plan(*c, **prm)
        return memo[key]

    def ratios(prm, cs=cases):
        return {c: t.get(c + choice(c, prm), 1.5 * fastest[c]) / fastest[c] for c in cs}

    def fmt(r, cs=None):
        cs = cs or list(r)
        v = [r[c] for c in cs]
        out = "mean %.4f worst %.3f |" % (sum(v) / len(v), max(v))
        for B in (2, 3, 4, 8):
            vb = [r[c] for c in cs if c[0] == B]
            out += " %db %.4f" % (B, sum(vb) / len(vb)) if vb else ""
        return out + " (%d cases)" % len(v)

    def loso(grid, cs=cases, prefer=None):
        """each shape's ratios from the grid point best on the other shapes (ties: `prefer`, then order)"""
        R = {i: ratios(g, cs) for i, g in enumerate(grid)}
        held = {}
        for sh in shapes:
            train = [c for c in cs if c[1:3] != sh]
            i = min(R, key=lambda i: (round(sum(R[i][c] for c in train), 9), grid[i] != prefer))
            held.update({c: R[i][c] for c in cs if c[1:3] == sh})
        return R, held

    r_cur, r_new = ratios(CURRENT), ratios(PROPOSED)
    if any(plan(*c, max_splits=64, **p) != choice(c, p) for c in cases for p in (CURRENT, PROPOSED)):
        print("note: with the planner's 64-split cap a plan of more than 16 splits (not in the sweep) is chosen")
    print("current  (alpha 0.75, kCtaWarps 0.2):            ", fmt(r_cur))
    print("proposed (8 bits: alpha 0.4, kCtaWarps 0.6):     ", fmt(r_new))
    print("  only cases the one-slab model decides, current:", fmt(r_cur, one))
    print("  only cases the one-slab model decides, proposed:", fmt(r_new, one))

    print("\n1-D profiles (others at the current values): mean / worst / 8-bit mean")
    for name, vals in (("alpha", (0, .2, .4, .5, .6, .7, .75, .8, .9, 1)), ("ctaw", (0, .1, .2, .3, .4, .6, .8, 1, 1.5)),
                       ("wave", (0, 2e6, 3e6, 4e6, 5e6, 6e6, 8e6, 12e6)), ("tail", (4e6, 6e6, 8e6, 9e6, 10e6, 11e6, 12e6, 16e6)),
                       ("alpha_mem", (0, .2, .3, .4, .5, .6, .75, .9)), ("ctaw_mem", (0, .2, .4, .5, .6, .8, 1, 1.5))):
        cells = []
        for v in vals:
            r = ratios(dict(CURRENT, **{name: v}))
            cells.append("%g: %.4f/%.2f/%.4f" % (v, sum(r.values()) / len(r), max(r.values()),
                                                  sum(x for c, x in r.items() if c[0] == 8) / 48))
        print("  %-9s" % name, "  ".join(cells))

    c8 = [c for c in cases if mem_bound(c[0])]
    am, cm = (0, .1, .2, .3, .4, .5, .6, .75, .9), (0, .2, .4, .5, .6, .7, .8, 1, 1.2, 1.5)
    grid = [dict(CURRENT, alpha_mem=a, ctaw_mem=w) for a in am for w in cm]
    R, held = loso(grid, c8, prefer=dict(CURRENT, alpha_mem=0.75, ctaw_mem=0.2))
    print("\n8-bit mean ratio over alpha_mem (rows) x ctaw_mem (columns):")
    print("        " + " ".join("%6g" % w for w in cm))
    for a in am:
        print("  %5g " % a + " ".join("%.4f" % (sum(R[grid.index(dict(CURRENT, alpha_mem=a, ctaw_mem=w))].values()) / 48) for w in cm))
    print("2 constants for 8 bits, leave one shape out: 8-bit mean %.4f worst %.3f (current %.4f / %.3f, proposed %.4f / %.3f)"
          % (sum(held.values()) / 48, max(held.values()), sum(r_cur[c] for c in c8) / 48, max(r_cur[c] for c in c8),
             sum(r_new[c] for c in c8) / 48, max(r_new[c] for c in c8)))

    print("\nper width, the 4 constants (wave, tail, alpha, ctaw) fitted on that width alone:")
    g4 = [dict(wave=w, tail=tl, alpha=a, ctaw=cw) for w in (2e6, 3e6, 4e6, 6e6, 8e6) for tl in (6e6, 8e6, 10e6, 12e6, 14e6)
          for a in (0, .2, .4, .6, .75, .9, 1) for cw in (0, .2, .4, .6, .8, 1)]
    for B in (2, 3, 4, 8):
        cb = [c for c in cases if c[0] == B]
        R4, h4 = loso(g4, cb, prefer=CURRENT)
        i = min(R4, key=lambda i: sum(R4[i].values()))
        print("  %d bits: current %.4f, best in sample %.4f %s, leave one shape out %.4f (worst %.3f)"
              % (B, sum(r_cur[c] for c in cb) / len(cb), sum(R4[i].values()) / len(cb), g4[i], sum(h4.values()) / len(cb), max(h4.values())))

    R4, h4 = loso(g4, cases, prefer=CURRENT)
    i = min(R4, key=lambda i: sum(R4[i].values()))
    print("  all widths together: best in sample %s %s; leave one shape out %s" % (g4[i], fmt(R4[i]), fmt(h4)))

    print("\nsingle extra terms (others at the current values; leave one shape out over each term's values):")
    for name, vals in (("split_cta", (0, 2e4, 5e4, 1e5, 2e5, 4e5)), ("cta_fix", (0, 2e4, 5e4, 1e5, 2e5, 4e5)),
                       ("gen", (0, 5e5, 1e6, 2e6, 3e6, 4e6)), ("idle", (1.0, 0.9, 0.8, 0.7, 0.6, 0.5))):
        grid = [dict(CURRENT, **{name: v}) for v in vals]
        Rx, hx = loso(grid, cases, prefer=CURRENT)
        i = min(Rx, key=lambda i: (sum(Rx[i].values()), i))
        print("  %-9s best in sample %g: %s\n  %-9s leave one shape out: %s" % (name, vals[i], fmt(Rx[i]), "", fmt(hx)))

    print("\nsweep choices that change (current -> proposed):")
    for c in cases:
        a, b = choice(c, CURRENT), choice(c, PROPOSED)
        if a != b:
            print("  %s: %dx%d %.2f us -> %dx%d %.2f us (%+.1f %%; fastest %.2f)"
                  % (c, a[0], a[1], t[c + a], b[0], b[1], t[c + b], 100 * (t[c + b] / t[c + a] - 1), fastest[c]))

    if "--tune" in sys.argv:
        tune_check(sys.argv[sys.argv.index("--tune") + 1:], t)


def tune_check(files, sweep):
    """replays the full planner over tune_decode result files: checks it against their "planned" shapes, lists
    the cases whose planned shape changes, with the times the files (planned / tuned) and the sweep hold"""
    meas, cases = {}, set()
    print()

    def key(ch):  # (warps, splits, slabs[, persist 2])
        ch = tuple(ch) + (1,) * (4 - len(ch))
        return ch[:3] if ch[3] == 1 else ch
    for f in files:
        tag = re.sub(r".*_(s\d+\w*)\.json$", r"\1", f)
        rows = json.load(open(f))["rows"]
        bad = [r for r in rows if full_plan(r["bits"], r["K"], r["N"], r["M"], CURRENT)[:len(r["planned"])][:3]
               != tuple(r["planned"])[:3]]
        print("%s: %d rows, the replay of the current planner differs from \"planned\" (warps, splits, slabs) in %d%s"
              % (tag, len(rows), len(bad), " (an older planner ran)" if bad else ""))
        for r in rows:
            c = (r["bits"], r["K"], r["N"], r["M"])
            cases.add(c)
            meas.setdefault((c, key(r["planned"])), []).append("%s %.2f" % (tag, r["us_planned"]))
            if key(r["tuned"]) != key(r["planned"]):
                meas.setdefault((c, key(r["tuned"])), []).append("%s %.2f" % (tag, r["us_tuned"]))

    def times(c, ch):
        k = key(ch)
        sw = sweep.get(c + ch[:2]) if ch[2] == 1 and ch[3] == 1 else None
        return "%s [tune: %s] [sweep: %s]" % (k, ", ".join(meas.get((c, k), [])) or "-", "%.2f" % sw if sw else "-")
    print("\ntune cases whose planned shape changes:")
    for c in sorted(cases):
        a, b = full_plan(*c, CURRENT), full_plan(*c, PROPOSED)
        if a != b:
            print("  %s\n     old %s\n     new %s" % (c, times(c, a), times(c, b)))


if __name__ == "__main__":
    main()
