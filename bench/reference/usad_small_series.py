"""How well the authors' USAD training separates a short inverted burst on the small periodic series
of crates/vigil-models/tests/learning.rs (window 10, latent 8, batch 16, 30 epochs), per seed.

    python3 bench/reference/usad_small_series.py --seeds 1 2 3 4

Prints the mean score of normal points (50..150), of the burst (200..205) and their ratio. Pass
--no-carry to zero every gradient after each phase, i.e. without the decoders' carry-over.
"""
import argparse

import numpy as np
import torch
import torch.nn as nn

from usad import mlp


def periodic(n):
    t = np.arange(n) * 2 * np.pi / 50
    return np.stack([0.5 + 0.4 * np.sin(t), 0.5 + 0.4 * np.cos(t),
                     0.5 + 0.2 * (np.sin(t) + np.cos(t)) / 1.5], 1).astype(np.float32)


def run(seed, carry, w=10, latent=8, batch=16, epochs=30):
    torch.manual_seed(seed)
    x, m = periodic(2000), 3
    train = torch.tensor(np.stack([x[i:i + w].reshape(-1) for i in range(len(x) - w + 1)]))
    d = w * m
    enc = mlp([d, d // 2, d // 4, latent], nn.ReLU())
    dec1 = mlp([latent, d // 4, d // 2, d], nn.Sigmoid())
    dec2 = mlp([latent, d // 4, d // 2, d], nn.Sigmoid())
    opt1 = torch.optim.Adam(list(enc.parameters()) + list(dec1.parameters()))
    opt2 = torch.optim.Adam(list(enc.parameters()) + list(dec2.parameters()))
    for e in range(epochs):
        n = e + 1
        for idx in torch.randperm(len(train)).split(batch):
            b = train[idx]
            w1 = dec1(enc(b))
            loss1 = 1 / n * torch.mean((b - w1) ** 2) + (1 - 1 / n) * torch.mean((b - dec2(enc(w1))) ** 2)
            loss1.backward()
            opt1.step()
            opt1.zero_grad()
            if not carry:
                dec2.zero_grad()
            z = enc(b)
            loss2 = 1 / n * torch.mean((b - dec2(z)) ** 2) - (1 - 1 / n) * torch.mean((b - dec2(enc(dec1(z)))) ** 2)
            loss2.backward()
            opt2.step()
            opt2.zero_grad()
            if not carry:
                dec1.zero_grad()
    test = periodic(400)
    test[200:205] = 1 - test[200:205]
    padded = np.concatenate([np.repeat(test[:1], w - 1, 0), test])
    windows = torch.tensor(np.stack([padded[i:i + w].reshape(-1) for i in range(len(test))]))
    with torch.no_grad():
        w1 = dec1(enc(windows))
        e = 0.5 * (windows - w1) ** 2 + 0.5 * (windows - dec2(enc(w1))) ** 2
        score = e[:, (w - 1) * m:].sum(1).numpy()
    normal, burst = score[50:150].mean(), score[200:205].mean()
    return normal, burst


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4])
    p.add_argument("--no-carry", action="store_true")
    args = p.parse_args()
    for seed in args.seeds:
        normal, burst = run(seed, carry=not args.no_carry)
        print(f"seed {seed}: normal {normal:.4f}  burst {burst:.4f}  ratio {burst / normal:.1f}x")


if __name__ == "__main__":
    main()
