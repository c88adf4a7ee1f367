#!/usr/bin/env python3
"""Counts the SASS of each decode kernel's main loop (the NOTES.md "SASS per tile" table).

usage: nvcc -std=c++20 -arch=sm_90a -cubin -O3 --expt-relaxed-constexpr -Iinclude -o k.cubin inst.cu
       nvdisasm -c k.cubin > k.sass          # nvdisasm: CUDA toolkit or the nvidia-cuda-nvdisasm wheel
       python3 bench/kernels/sass_loop_count.py k.sass
where inst.cu includes lowbit/kernels/decode.cuh and explicitly instantiates
lowbit::kernels::detail::decode_gemm_kernel<B, T, MT, GPT, false> for the configurations of interest.

For each kernel: the static instruction count of its largest loop (the main loop), the opcode histogram,
and the conditional blocks inside it (forward branches), labelled issue (cp.async), group (zeros) or
fold (scales); per tile for group 128 = static - (group + fold) / 2.
"""
import collections
import re
import sys


def parse(body):
    ins, lab, pend = [], {}, []
    for line in body.split('\n'):
        m = re.match(r'^\s*\.(L_x_\d+):', line)
        if m:
            pend.append(m.group(1))
            continue
        m = re.match(r'\s*/\*([0-9a-f]{4,})\*/\s+(.*?);', line)
        if m:
            a = int(m.group(1), 16)
            for p in pend:
                lab[p] = a
            pend = []
            ins.append((a, m.group(2).strip()))
    return ins, lab


def main(path):
    txt = open(path).read()
    parts = re.split(r'//-+ \.text\.(\S+) -+', txt)
    for name, body in zip(parts[1::2], parts[2::2]):
        if 'decode_gemm_kernel' not in name:
            continue
        ins, lab = parse(body)
        best = None
        for a, t in ins:
            b = re.search(r'BRA\s+.*?\.(L_x_\d+)', t)
            if b and b.group(1) in lab and lab[b.group(1)] < a:
                lo = lab[b.group(1)]
                n = sum(1 for x in ins if lo <= x[0] <= a)
                if best is None or n > best[2]:
                    best = (lo, a, n)
        if best is None:
            continue
        lo, hi, n = best
        loop = [x for x in ins if lo <= x[0] <= hi]
        ops = collections.Counter(re.sub(r'^@!?U?P\w+\s+', '', t).split()[0] for _, t in loop)
        blocks = []
        for a, t in loop:
            b = re.search(r'BRA\s+.*?\.(L_x_\d+)', t)
            if b and b.group(1) in lab and a < lab[b.group(1)] <= hi:
                skipped = [x[1] for x in loop if a < x[0] < lab[b.group(1)]]
                kinds = ' '.join(s.split()[0] for s in skipped)
                kind = 'issue' if 'LDGSTS' in kinds else 'fold' if 'FFMA' in kinds else 'group'
                blocks.append((kind, len(skipped)))
        outer_group = max([c for k, c in blocks if k == 'group'], default=0)
        fold = max([c for k, c in blocks if k == 'fold'], default=0)
        m = re.search(r'decode_gemm_kernelILi(\d)ENS_\w*?(half_t|bfloat16_t)ELi(\d)ELi(\d)ELb(\d)', name)
        tag = 'B=%s %s MT=%s GPT=%s bulk=%s' % m.groups() if m else name
        print('%s: loop %d, per tile g128 ~%d, blocks %s' % (tag, n, n - (outer_group + fold) // 2, blocks))
        print('   ', dict(ops.most_common()))


if __name__ == '__main__':
    main(sys.argv[1])
