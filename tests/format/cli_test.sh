#!/usr/bin/env bash
# End-to-end test of the `lowbit` CLI: quantize -> inspect (text and --json) -> dequantize on a small
# generated model, then bad inputs that must exit non-zero with a one-line reason.
# usage: cli_test.sh LOWBIT MAKE_FIXTURE WORKDIR
set -u
LOWBIT=$1
FIXTURE=$2
WORK=$3
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK" || exit 1
"$FIXTURE" in || { echo "FAIL: fixture generator"; exit 1; }

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# expect_ok DESCRIPTION CMD...: must exit 0
expect_ok() {
  local what=$1; shift
  if ! "$@" >out.txt 2>err.txt; then fail "$what (exit $?): $(cat err.txt)"; fi
}
# expect_fail DESCRIPTION PATTERN CMD...: must exit non-zero with one stderr line matching PATTERN
expect_fail() {
  local what=$1 pattern=$2; shift 2
  "$@" >out.txt 2>err.txt
  local rc=$?
  if [ $rc -eq 0 ]; then fail "$what: exited 0"; return; fi
  local last
  last=$(tail -n 1 err.txt)
  if ! grep -q -- "$pattern" <<<"$last"; then fail "$what: stderr '$last' does not match '$pattern'"; fi
}
# json_has KEY VALUE: out.txt (pretty JSON) contains "KEY": VALUE
json_has() { grep -q "\"$1\": $2" out.txt || fail "inspect --json: no \"$1\": $2 in $(tr -d '\n ' <out.txt | head -c 400)"; }

# ---- happy path ----
expect_ok "quantize 4-bit g32 sym" "$LOWBIT" quantize --method rtn --bits 4 --group 32 --sym in/model.safetensors q4
[ -f q4/model.safetensors ] && [ -f q4/quantize_config.json ] || fail "quantize wrote no checkpoint"
ls q4 | grep -q '\.tmp\.' && fail "quantize left a temporary file"
grep -q '"checkpoint_format": "gptq"' q4/quantize_config.json || fail "sym default format should be gptq (v1)"

grep -q "kept model.embed_tokens.weight in full precision" err.txt || fail "quantize did not keep the embedding"
expect_ok "inspect text" "$LOWBIT" inspect q4
grep -q "model.layers.0.mlp.up_proj" out.txt || fail "inspect text lacks the up_proj layer"
expect_ok "inspect --json" "$LOWBIT" inspect q4 --json
# up_proj: N=64, K=128 at 4 bits, group 32: qweight 128*4/32*64*4 = 4096 B, qzeros 4*(64*4/32)*4 = 128 B,
# scales 4*64*2 = 512 B, g_idx 128*4 = 512 B, bias 64*2 = 128 B.
json_has N 64
json_has K 128
json_has bits 4
json_has group_size 32
json_has qweight 4096
json_has qzeros 128
json_has scales 512
json_has g_idx 512
json_has layers 2
json_has weights 16384
json_has fp16_bytes 32896   # 2*16384*2 weights + 64*2 bias

expect_ok "dequantize fp16" "$LOWBIT" dequantize q4 deq16.safetensors
expect_ok "dequantize fp32" "$LOWBIT" dequantize q4/model.safetensors deq32.safetensors --dtype fp32
# 2 weights of 8192 values (fp32: 32 KiB each) + bias + norm + ids must be in the fp32 file.
size32=$(stat -c %s deq32.safetensors)
[ "$size32" -gt $((2 * 8192 * 4)) ] || fail "fp32 dequantized file too small ($size32 bytes)"

expect_ok "quantize 3-bit asym (v2 default) with --match" \
  "$LOWBIT" quantize --bits 3 --group 64 --match 'up_proj' in/model.safetensors q3
grep -q '"checkpoint_format": "gptq_v2"' q3/quantize_config.json || fail "asym default format should be gptq_v2"
expect_ok "inspect q3 --json" "$LOWBIT" inspect q3 --json
json_has layers 1
json_has count 4   # down_proj.weight, embed_tokens, norm and position_ids passed through
expect_ok "quantize 8-bit per-channel v2" "$LOWBIT" quantize --bits 8 --group -1 --format gptq_v2 in/model.safetensors q8
expect_ok "inspect q8" "$LOWBIT" inspect q8 --json
json_has group_size -1
expect_ok "quantize the embedding when --match selects it" "$LOWBIT" quantize --sym --group 32 --match 'embed|proj' in/model.safetensors qe
expect_ok "inspect qe" "$LOWBIT" inspect qe --json
json_has layers 3
# v1 -> v2 -> v1 is lossless: identical dequantized weights, identical qzeros after the round trip.
expect_ok "convert q4 to gptq_v2" "$LOWBIT" convert --format gptq_v2 q4 q4v2
grep -q '"checkpoint_format": "gptq_v2"' q4v2/quantize_config.json || fail "convert did not record gptq_v2"
expect_ok "convert back to gptq" "$LOWBIT" convert --format gptq q4v2 q4v1
cmp -s q4/model.safetensors q4v1/model.safetensors || fail "v1 -> v2 -> v1 changed the checkpoint bytes"
expect_ok "dequantize v2" "$LOWBIT" dequantize q4v2 deq16_v2.safetensors
cmp -s deq16.safetensors deq16_v2.safetensors || fail "v1 and v2 checkpoints dequantize differently"
expect_fail "convert without --format" "--format gptq|gptq_v2 is required" "$LOWBIT" convert q4 qy
expect_ok "quantize 2-bit asym v2" "$LOWBIT" quantize --bits 2 --group 32 in/model.safetensors q2
expect_fail "convert a zero of 0 to v1" "cannot be stored in the v1" "$LOWBIT" convert --format gptq q2 qy
[ -e qy/model.safetensors ] && fail "failed convert left a checkpoint"
expect_ok "help" "$LOWBIT" --help
expect_ok "quantize --help" "$LOWBIT" quantize --help

# ---- bad input: non-zero exit, one-line reason ----
expect_fail "unknown command" "unknown command" "$LOWBIT" frobnicate
expect_fail "unknown option" "unknown option --bogus" "$LOWBIT" inspect q4 --bogus
expect_fail "bad bits" "bits must be 2, 3, 4 or 8" "$LOWBIT" quantize --bits 5 in/model.safetensors qx
expect_fail "bad method" "unknown --method 'awq'" "$LOWBIT" quantize --method awq in/model.safetensors qx
expect_fail "bad format" "unknown checkpoint_format" "$LOWBIT" quantize --format v9 in/model.safetensors qx
expect_fail "bad regex" "invalid regular expression" "$LOWBIT" quantize --match '(' in/model.safetensors qx
expect_fail "match nothing" "matched none" "$LOWBIT" quantize --match nothing_here in/model.safetensors qx
expect_fail "non-finite weight" "tensor 'broken.weight'.*non-finite" "$LOWBIT" quantize --bits 4 --group 32 in/nan.safetensors qx
expect_fail "group not dividing K" "group size 128 does not divide K = 100" "$LOWBIT" quantize in/odd.safetensors qx
expect_fail "v1 cannot store zero 0" "cannot be stored in the v1" \
  "$LOWBIT" quantize --bits 2 --group 32 --format gptq in/model.safetensors qx
[ -e qx ] && [ -n "$(ls -A qx 2>/dev/null)" ] && fail "failed quantize left files in qx: $(ls qx)"
expect_fail "truncated input" "truncated" "$LOWBIT" inspect in/truncated.safetensors
expect_fail "missing input" "cannot open\|neither" "$LOWBIT" inspect does_not_exist
expect_fail "not a checkpoint" "no quantize_config.json" "$LOWBIT" inspect in/model.safetensors
expect_fail "dequantize over its input" "refusing to overwrite an input" "$LOWBIT" dequantize q4 q4/model.safetensors
cp in/model.safetensors in_copy.safetensors
expect_fail "quantize over its input" "refusing to overwrite an input" "$LOWBIT" quantize --sym --group 32 in/model.safetensors in
cmp -s in/model.safetensors in_copy.safetensors || fail "quantize touched its input"
expect_fail "bad dtype" "--dtype must be fp16 or fp32" "$LOWBIT" dequantize q4 x.safetensors --dtype int4
expect_fail "missing operand" "expected IN and OUT" "$LOWBIT" dequantize q4

# A corrupted checkpoint: a scale set to NaN must be named.
cp -r q4 qbad
python_free_patch() {  # overwrite the first scale of up_proj (fp16) with NaN 0x7e00 via the header offsets
  local f=qbad/model.safetensors
  local hlen
  hlen=$(od -An -t u8 -N 8 "$f" | tr -d ' ')
  local hdr
  hdr=$(dd if="$f" bs=1 skip=8 count="$hlen" 2>/dev/null)
  local off
  off=$(grep -o '"model.layers.0.mlp.up_proj.scales":{[^}]*}' <<<"$hdr" | grep -o '"data_offsets":\[[0-9]*' | grep -o '[0-9]*$')
  printf '\x00\x7e' | dd of="$f" bs=1 seek=$((8 + hlen + off)) conv=notrunc 2>/dev/null
}
python_free_patch
expect_fail "NaN scale" "up_proj.scales': value nan" "$LOWBIT" inspect qbad

if [ $failures -ne 0 ]; then echo "$failures CLI check(s) failed"; exit 1; fi
echo "all CLI checks passed"
