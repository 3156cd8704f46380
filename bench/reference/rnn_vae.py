"""The recurrent VAE of crates/vigil-models/src/detectors/rnn_vae.rs in PyTorch, for vigil's speed
comparison: GRU encoder (metrics -> 64), posterior head (dense 64, ReLU; mean and softplus std of
3 latents per step), GRU decoder (3 -> 64), likelihood head (dense 64, ReLU; mean and softplus std
per metric); window 100, batch 50, Adam lr 1e-3 with gradient-norm clip 10, loss = Gaussian
negative log-likelihood + KL to N(0, I). Windows are cut per batch from a strided view, as vigil
does, so neither side holds all windows in memory. Scoring: one front-padded window per point,
z at its posterior mean, negative log-likelihood of the newest step (the likelihood head runs on
that step only, as in vigil).

    python3 bench/reference/rnn_vae.py --data smd_like.npy --epochs 3
"""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from common import median_seconds, parse_args, report, setup, timed

WINDOW, HIDDEN, DENSE, LATENT, BATCH, EPS = 100, 64, 64, 3, 50, 1e-4


class GaussianHead(nn.Module):
    def __init__(self, inp, out):
        super().__init__()
        self.hidden = nn.Linear(inp, DENSE)
        self.mean = nn.Linear(DENSE, out)
        self.std = nn.Linear(DENSE, out)

    def forward(self, h):
        a = F.relu(self.hidden(h))
        return self.mean(a), F.softplus(self.std(a)) + EPS


class RnnVae(nn.Module):
    def __init__(self, metrics):
        super().__init__()
        self.encoder = nn.GRU(metrics, HIDDEN, batch_first=True)
        self.posterior = GaussianHead(HIDDEN, LATENT)
        self.decoder = nn.GRU(LATENT, HIDDEN, batch_first=True)
        self.likelihood = GaussianHead(HIDDEN, metrics)

    def nll(self, x, z):
        mean, std = self.likelihood(self.decoder(z)[0])
        return torch.log(std) + 0.5 * ((x - mean) / std) ** 2 + 0.5 * math.log(2 * math.pi)


def main():
    args = parse_args(__doc__)
    x = setup(args)
    series = torch.from_numpy(x)
    view = series.unfold(0, WINDOW, 1)  # [n, metrics, window], no copy
    model = RnnVae(x.shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def epoch():
        for idx in torch.randperm(len(view)).split(BATCH):
            b = view[idx].transpose(1, 2)
            mean_z, std_z = model.posterior(model.encoder(b)[0])
            z = mean_z + std_z * torch.randn_like(std_z)
            nll = model.nll(b, z).sum(2).mean()
            kl = (0.5 * (mean_z ** 2 + std_z ** 2 - 1) - torch.log(std_z)).sum(2).mean()
            loss = nll + kl
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            opt.step()

    seconds = [timed(epoch)[1] for _ in range(args.epochs)]

    padded = torch.cat([series[:1].repeat(WINDOW - 1, 1), series])
    test = padded.unfold(0, WINDOW, 1)

    def score():
        with torch.no_grad():
            out = []
            for start in range(0, len(test), 256):
                b = test[start:start + 256].transpose(1, 2)
                mean_z, _ = model.posterior(model.encoder(b)[0])
                # Only the newest step is scored: run the likelihood head on it alone, as vigil does.
                decoded = model.decoder(mean_z)[0][:, -1:, :]
                mean, std = model.likelihood(decoded)
                x = b[:, -1:, :]
                out.append((torch.log(std) + 0.5 * ((x - mean) / std) ** 2
                            + 0.5 * math.log(2 * math.pi))[:, 0, :])
            return torch.cat(out)

    score_seconds = median_seconds(score)
    report("rnn-vae", seconds, score_seconds, len(test))


if __name__ == "__main__":
    main()
