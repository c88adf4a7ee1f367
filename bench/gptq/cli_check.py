#!/usr/bin/env python3
"""Device check of `lowbit quantize --method gptq --device cuda|cpu`: writes a two-layer model and its
calibration inputs (raw safetensors, fp16 weights), runs the CLI on both devices and prints both tables.
usage: cli_check.py LOWBIT_BINARY WORKDIR"""
import json
import struct
import subprocess
import sys

import numpy as np


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, arr in tensors.items():
        dt = {np.float16: "F16", np.float32: "F32"}[arr.dtype.type]
        b = arr.tobytes()
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    exe, work = sys.argv[1], sys.argv[2]
    rng = np.random.default_rng(0)
    layers = {"model.layers.0.mlp.up_proj": (1024, 512), "model.layers.0.mlp.down_proj": (512, 1024)}
    weights, calib = {}, {}
    for name, (n, k) in layers.items():
        weights[name + ".weight"] = (0.02 * rng.standard_normal((n, k))).astype(np.float16)
        z = rng.standard_normal((2048, k))
        x = z + 0.7 * np.roll(z, 1, axis=1)
        x *= np.where(rng.random(k) < 0.05, 8.0, 1.0)
        calib[name + ".inputs"] = x.astype(np.float16)
    write_safetensors(f"{work}/model.safetensors", weights)
    write_safetensors(f"{work}/calib.safetensors", calib)
    rc = 0
    for dev in ("cuda", "cpu"):
        cmd = [exe, "quantize", "--method", "gptq", "--bits", "4", "--group", "128", "--act-order", "--device", dev,
               "--calib", f"{work}/calib.safetensors", f"{work}/model.safetensors", f"{work}/out_{dev}"]
        p = subprocess.run(cmd, capture_output=True, text=True)
        print(f"--- device {dev}: rc {p.returncode}\n{p.stdout}{p.stderr}", flush=True)
        rc |= p.returncode
    p = subprocess.run([exe, "inspect", f"{work}/out_cuda"], capture_output=True, text=True)
    print(p.stdout, p.stderr)
    sys.exit(rc | p.returncode)


if __name__ == "__main__":
    main()
