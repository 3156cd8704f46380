"""The dense VAE of crates/vigil-models/src/detectors/vae.rs in PyTorch, for vigil's speed comparison:
flattened windows (10 steps x metrics); encoder two dense ReLU layers of 100, then mean and
softplus std (+1e-4) of 8 latents; decoder two dense ReLU layers of 100, then mean and softplus
std per value; loss = Gaussian negative log-likelihood + KL to N(0, I); Adam lr 1e-3 with L2
weight decay 1e-3, batch 256. Scoring: one front-padded window per point, z at its posterior
mean, negative log-likelihood of the newest step (its columns only, as in vigil).

    python3 bench/reference/vae.py --data smd_like.npy --epochs 3
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from common import median_seconds, padded_windows, parse_args, report, setup, timed, windows

WINDOW, HIDDEN, LATENT, BATCH, EPS = 10, 100, 8, 256, 1e-4


class GaussianBlock(nn.Module):
    def __init__(self, inp, out):
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(inp, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, HIDDEN), nn.ReLU())
        self.mean = nn.Linear(HIDDEN, out)
        self.std = nn.Linear(HIDDEN, out)

    def forward(self, x):
        h = self.hidden(x)
        return self.mean(h), F.softplus(self.std(h)) + EPS


def nll(x, mean, std):
    return torch.log(std) + 0.5 * ((x - mean) / std) ** 2 + 0.5 * math.log(2 * math.pi)


def main():
    args = parse_args(__doc__)
    x = setup(args)
    train = windows(x, WINDOW)
    d, m = train.shape[1], x.shape[1]
    encoder, decoder = GaussianBlock(d, LATENT), GaussianBlock(LATENT, d)
    params = list(encoder.parameters()) + list(decoder.parameters())
    opt = torch.optim.Adam(params, lr=1e-3, weight_decay=1e-3)

    def epoch():
        for idx in torch.randperm(len(train)).split(BATCH):
            b = train[idx]
            mean_z, std_z = encoder(b)
            z = mean_z + std_z * torch.randn_like(std_z)
            mean_x, std_x = decoder(z)
            loss = nll(b, mean_x, std_x).sum(1).mean() + \
                (0.5 * (mean_z ** 2 + std_z ** 2 - 1) - torch.log(std_z)).sum(1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()

    seconds = [timed(epoch)[1] for _ in range(args.epochs)]
    test = padded_windows(x, WINDOW)

    def score():
        with torch.no_grad():
            out = []
            for b in test.split(4096):
                h = decoder.hidden(encoder.mean(encoder.hidden(b)))
                mean = F.linear(h, decoder.mean.weight[-m:], decoder.mean.bias[-m:])
                std = F.softplus(F.linear(h, decoder.std.weight[-m:], decoder.std.bias[-m:])) + EPS
                out.append(nll(b[:, -m:], mean, std))
            return torch.cat(out)

    score_seconds = median_seconds(score)
    report("vae", seconds, score_seconds, len(test))


if __name__ == "__main__":
    main()
