#!/usr/bin/env bash
# Training and scoring speed of vigil's deep detectors against PyTorch scripts of the same
# architecture, shapes and batch size (bench/reference/), on this machine, in one run.
#
#     bench/speed.sh [EPOCHS]                # every model; writes bench/results/speed.md
#     bench/speed.sh EPOCHS MODEL[,MODEL...] [STEPS]   # those models only, optionally on the
#                                                      # first STEPS steps; writes
#                                                      # bench/results/speed-MODELS[-STEPS].md
#
# Needs python3 with torch and numpy (pip install torch numpy). The data is an SMD-shaped
# random walk (28,479 steps x 38 metrics, in [0, 1]) generated with a fixed seed.
set -euo pipefail
cd "$(dirname "$0")/.."
epochs="${1:-3}"
all_models="usad,tranad,rnn-vae,omni-anomaly,interfusion,lstm-ndt,gdn,anomaly-transformer,vae,deep-svdd,dagmm"
models="${2:-$all_models}"
steps="${3:-}"
if [ "$models" = "$all_models" ] && [ -z "$steps" ]; then out=bench/results/speed.md; else out="bench/results/speed-${models//,/-}${steps:+-$steps}.md"; fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
data="$work/smd_like.npy"
python3 bench/reference/smd_like.py "$data" $steps
cargo build --release -p vigil-models --benches >/dev/null 2>&1
: > "$work/results.jsonl"
for model in ${models//,/ }; do
    python3 "bench/reference/${model//-/_}.py" --data "$data" --epochs "$epochs" 2>/dev/null | tail -1 >> "$work/results.jsonl"
    # Same work on both sides: OmniAnomaly's and InterFusion's PyTorch scripts train on every
    # window without the authors' validation split, so vigil's do too here. InterFusion's
    # pre-training falls in vigil's first, untimed epoch; one epoch of it is enough.
    config='{}'
    if [ "$model" = omni-anomaly ]; then config='{"validation": 0.0}'; fi
    if [ "$model" = interfusion ]; then config='{"validation": 0.0, "pretrain_epochs": 1}'; fi
    cargo bench -q -p vigil-models --bench speed -- --detector "$model" --data "$data" --epochs "$epochs" --config "$config" 2>/dev/null | tail -1 >> "$work/results.jsonl"
done
# One Adam step of a recurrent encoder-decoder on issue 5's shape (batch 64, window 100,
# 38 metrics, hidden 64): PyTorch, vigil's fused layer, burn's own layer.
: > "$work/steps.jsonl"
for cell in lstm gru; do
    python3 bench/reference/recurrent_step.py --cell "$cell" --steps 20 2>/dev/null | tail -1 >> "$work/steps.jsonl"
    cargo bench -q -p vigil-models --bench recurrent_step -- --cell "$cell" --steps 20 2>/dev/null | grep '^{' >> "$work/steps.jsonl"
done
python3 bench/reference/gemm_peak.py 2>/dev/null | tail -1 > "$work/peak.json"
python3 - "$work/results.jsonl" "$epochs" "$work/steps.jsonl" "$work/peak.json" "${2:-}" "$steps" > "$out" <<'PY'
import json, platform, subprocess, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
print("# Training and scoring speed: vigil vs PyTorch, same architecture, shapes and batch\n")
models_arg = f" {sys.argv[5]}" if sys.argv[5] else ""
n_steps = int(sys.argv[6]) if sys.argv[6] else 28479
steps_arg = f" {sys.argv[6]}" if sys.argv[6] else ""
print(f"Command: `bench/speed.sh {sys.argv[2]}{models_arg}{steps_arg}` — data: SMD-shaped random walk, {n_steps:,} steps x 38 metrics; ")
print(f"epoch time is the mean over epochs 2..{sys.argv[2]} (epoch 1 warms up); scoring covers every point.")
print(f"Machine: {cpu}, {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores, both sides on all cores.\n")
print("| model | implementation | s / epoch | scoring points / s | peak RSS MB |")
print("|---|---|---|---|---|")
for r in rows:
    print(f"| {r['model']} | {r['implementation']} | {r['epoch_seconds']:.2f} | {r['score_points_per_second']:,.0f} | {r['peak_rss_mb']:.0f} |")
print("\n| model | training speed vigil / PyTorch | scoring speed vigil / PyTorch | peak memory vigil / PyTorch |")
print("|---|---|---|---|")
by = {}
for r in rows:
    by.setdefault(r["model"], {})["vigil" if r["implementation"].startswith("vigil") else "torch"] = r
for model, p in by.items():
    v, t = p["vigil"], p["torch"]
    print(f"| {model} | {t['epoch_seconds'] / v['epoch_seconds']:.2f}x | "
          f"{v['score_points_per_second'] / t['score_points_per_second']:.2f}x | "
          f"{v['peak_rss_mb'] / t['peak_rss_mb']:.2f} |")
steps = list({(r["model"], r["implementation"]): r
              for r in (json.loads(l) for l in open(sys.argv[3]) if l.strip())}.values())
# Multiply-adds per scored point of vigil's scoring pass on these shapes (38 metrics); PyTorch's
# scripts do at least as many. USAD (window 5: 190 -> 95 -> 47 -> 40): encoder twice, decoder 1,
# decoder 2 with only the newest step's 38 outputs of its last layer. TranAD (window 10, d 76,
# feed-forward 16), per phase: encoder q/k/v 10*76*228, attention 2*10*10*76, output 10*76*76,
# feed-forward 2*10*76*16; decoder on one token: self-attention value+output 2*76*76, cross q
# 76*76, k/v 10*76*152, attention 2*10*76, output 76*76, feed-forward 2*76*16, head 76*38.
# rnn-vae (window 100, hidden 64, dense 64, latent 3): encoder GRU 100*192*(38+64), posterior
# 100*64*(64+3), decoder GRU 100*192*(3+64), likelihood head on the newest step 64*(64+2*38).
macs = {
    "usad": 3 * (190 * 95 + 95 * 47 + 47 * 40) + (40 * 47 + 47 * 95 + 95 * 38),
    "tranad": 2 * (10 * 76 * 228 + 2 * 10 * 10 * 76 + 10 * 76 * 76 + 2 * 10 * 76 * 16
                   + 2 * 76 * 76 + 76 * 76 + 10 * 76 * 152 + 2 * 10 * 76 + 76 * 76
                   + 2 * 76 * 16 + 76 * 38),
    "rnn-vae": 100 * 192 * (38 + 64) + 100 * 64 * (64 + 3) + 100 * 192 * (3 + 64) + 64 * (64 + 2 * 38),
    # omni-anomaly (window 100, hidden 64, dense 64, latent 3, 20 flows): q's GRU and two dense
    # layers on every step, the posterior's [mean | std] from the features (6 outputs) and the mean
    # from the previous latent, the flow on every step, p's GRU on every step, p's dense layers
    # and the two heads on the newest step.
    "omni-anomaly": 100 * 192 * (38 + 64) + 100 * 2 * 64 * 64 + 100 * 64 * 6 + 100 * 3 * 3
                    + 100 * 20 * 6 + 100 * 192 * (3 + 64) + 2 * 64 * 64 + 64 * 2 * 38,
    # interfusion (window 100, 38 channels, kernel 5, compressed 13, hidden 64, dense 64, latent
    # 3, 20 RealNVP levels with 100 hidden units): per pass the five convolutions (output lengths
    # 50, 50, 25, 25, 13) and z2's 1x1 head, the five transposed convolutions (25, 25, 50, 50,
    # 100), the backward GRU and two dense layers on every step, q's and p's z1 Gaussians, the
    # flow, and p's layers on every step; 10 MCMC passes and the final one per point.
    "interfusion": 11 * (163 * 38 * 38 * 5 + 13 * 38 * 76 + 250 * 38 * 38 * 5
                         + 100 * 192 * (38 + 64) + 100 * 2 * 64 * 64 + 100 * (64 + 38 + 6) * 6
                         + 20 * 100 * (9 + 100 + 100 * 4) + 100 * 3 * 38
                         + 100 * (76 * 64 + 64 * 64 + 64 * 76)),
    # lstm-ndt (window 100: 99 steps read; 2 LSTM layers of 80, 4 gates each; head 80 -> 38).
    "lstm-ndt": 99 * 320 * (38 + 80) + 99 * 320 * (80 + 80) + 80 * 38,
    # gdn (window 5, embedding 64, 5 neighbours per node, 38 nodes): W x, the two attention
    # dot products, the weighted sum over neighbours, z * v and the head.
    "gdn": 38 * (5 * 64 + 2 * 64 + 5 * 64 + 64 + 64),
    # anomaly-transformer (window 100, d_model 64, 8 heads, 3 layers, feed-forward 64): every
    # point runs its whole window — embedding 100*114*64; per layer q/k/v/output 4*100*64*64,
    # sigma 100*64*8, scores and weighted sum 2*8*100*100*8, feed-forward 2*100*64*64; projection
    # 100*64*38.
    "anomaly-transformer": 100 * 114 * 64 + 3 * (4 * 100 * 64 * 64 + 100 * 64 * 8
                                                + 2 * 8 * 100 * 100 * 8 + 2 * 100 * 64 * 64)
                           + 100 * 64 * 38,
    # vae (window 10: 380 -> 100 -> 100 -> 8 mean; 8 -> 100 -> 100 -> 2 heads of the newest 38).
    "vae": 380 * 100 + 100 * 100 + 100 * 8 + 8 * 100 + 100 * 100 + 2 * 100 * 38,
    # deep-svdd (380 -> 128 -> 64 -> 32): the forward pass and the input gradient of the
    # per-metric shares, each the same products.
    "deep-svdd": 2 * (380 * 128 + 128 * 64 + 64 * 32),
    # dagmm (window 5: 190 -> 60 -> 30 -> 10 -> 1 and back), energy on a 3-dimensional code.
    "dagmm": 2 * (190 * 60 + 60 * 30 + 30 * 10 + 10 * 1),
}
peak = json.load(open(sys.argv[4]))
print("\n## Scoring is compute-bound: what 3x PyTorch would need\n")
print(f"This machine's f32 matmul peak, measured in the same run (`bench/reference/gemm_peak.py`): "
      f"{peak['large_gmacs']:.0f} G multiply-adds/s on a 4096x1024x1024 product, "
      f"{peak['usad_layer_gmacs']:.0f} G/s on USAD's largest layer (4096x190x95).\n")
print("| model | multiply-adds per point | vigil G/s | PyTorch G/s | 3x PyTorch needs G/s | as share of the 4096x1024x1024 peak |")
print("|---|---|---|---|---|---|")
for model, p in by.items():
    v, t = p["vigil"], p["torch"]
    need = 3 * t["score_points_per_second"] * macs[model] / 1e9
    print(f"| {model} | {macs[model]:,} | {v['score_points_per_second'] * macs[model] / 1e9:.1f} | "
          f"{t['score_points_per_second'] * macs[model] / 1e9:.1f} | {need:.1f} | {need / peak['large_gmacs']:.0%} |")
print("\n## Recurrent layers: one Adam step of an encoder-decoder\n")
print("Batch 64, window 100, 38 metrics, hidden 64 (issue 5's table); encoder, last hidden state repeated, ")
print("decoder, linear output, MSE. Mean over 20 steps after 2 warm-up steps. Models: ")
print("`crates/vigil-models/benches/recurrent_step.rs`, `bench/reference/recurrent_step.py`.\n")
print("| model | implementation | ms / step | vs PyTorch (speed) | peak RSS MB |")
print("|---|---|---|---|---|")
torch_ms = {r["model"]: r["ms_per_step"] for r in steps if r["implementation"].startswith("PyTorch")}
for r in steps:
    print(f"| {r['model']} | {r['implementation']} | {r['ms_per_step']:.1f} | "
          f"{torch_ms[r['model']] / r['ms_per_step']:.2f}x | {r['peak_rss_mb']:.0f} |")
PY
cat "$out"
