"""USAD in PyTorch, as the authors' script trains it, for vigil's speed comparison.

Same architecture as crates/vigil-models/src/detectors/usad.rs: encoder d -> d/2 -> d/4 -> latent (ReLU),
two decoders latent -> d/4 -> d/2 -> d (ReLU, sigmoid out), window 5, latent 40, batch 64, Adam
lr 1e-3. Each optimiser zeroes only its own parameters, as in the authors' code, so each decoder
carries the other phase's gradient into its next step.

    python3 bench/reference/usad.py --data smd_like.npy --epochs 3
"""
import torch
import torch.nn as nn

from common import median_seconds, padded_windows, parse_args, report, setup, timed, windows

WINDOW, LATENT, BATCH, ALPHA, BETA = 5, 40, 64, 0.5, 0.5


def mlp(sizes, out):
    layers = []
    for i in range(len(sizes) - 1):
        layers += [nn.Linear(sizes[i], sizes[i + 1]), nn.ReLU() if i < len(sizes) - 2 else out]
    return nn.Sequential(*layers)


def main():
    args = parse_args(__doc__)
    x = setup(args)
    train = windows(x, WINDOW)
    d = train.shape[1]
    enc = mlp([d, d // 2, d // 4, LATENT], nn.ReLU())
    dec1 = mlp([LATENT, d // 4, d // 2, d], nn.Sigmoid())
    dec2 = mlp([LATENT, d // 4, d // 2, d], nn.Sigmoid())
    opt1 = torch.optim.Adam(list(enc.parameters()) + list(dec1.parameters()), lr=1e-3)
    opt2 = torch.optim.Adam(list(enc.parameters()) + list(dec2.parameters()), lr=1e-3)

    def epoch(n):
        for idx in torch.randperm(len(train)).split(BATCH):
            b = train[idx]
            w1 = dec1(enc(b))
            w3 = dec2(enc(w1))
            loss1 = 1 / n * torch.mean((b - w1) ** 2) + (1 - 1 / n) * torch.mean((b - w3) ** 2)
            loss1.backward()
            opt1.step()
            opt1.zero_grad()
            z = enc(b)
            w2 = dec2(z)
            w3 = dec2(enc(dec1(z)))
            loss2 = 1 / n * torch.mean((b - w2) ** 2) - (1 - 1 / n) * torch.mean((b - w3) ** 2)
            loss2.backward()
            opt2.step()
            opt2.zero_grad()

    seconds = [timed(lambda: epoch(n + 1))[1] for n in range(args.epochs)]

    test = padded_windows(x, WINDOW)

    def score():
        with torch.no_grad():
            out = []
            for b in test.split(4096):
                w1 = dec1(enc(b))
                w3 = dec2(enc(w1))
                e = ALPHA * (b - w1) ** 2 + BETA * (b - w3) ** 2
                out.append(e[:, -x.shape[1]:])
            return torch.cat(out)

    score_seconds = median_seconds(score)
    report("usad", seconds, score_seconds, len(test))


if __name__ == "__main__":
    main()
