"""DAGMM of crates/vigil-models/src/detectors/dagmm/ in PyTorch, for vigil's speed comparison:
flattened windows (5 steps x metrics) -> 60 -> 30 -> 10 -> 1 code (tanh), mirrored decoder;
z = [code, relative Euclidean distance, cosine similarity]; estimation z -> 10 (tanh, dropout
0.5) -> 4 (softmax); loss = squared reconstruction error + 0.1 x mean sample energy under the
batch's mixture + 0.005 x sum of inverse variances; ridge 1e-6 on the covariances; Adam 1e-4,
batch 1024. The energy goes through a Cholesky factorisation (torch.linalg), as vigil's does.
Scoring: every point's front-padded window, energy under the training mixture, shared per
metric by squared reconstruction error.

    python3 bench/reference/dagmm.py --data smd_like.npy --epochs 3
"""
import math

import torch
import torch.nn as nn

from common import median_seconds, padded_windows, parse_args, report, setup, timed, windows

WINDOW, HIDDEN, LATENT, EST, G, BATCH = 5, (60, 30, 10), 1, 10, 4, 1024
L1, L2, RIDGE = 0.1, 0.005, 1e-6


def tanh_stack(sizes, dropout=None):
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i + 2 < len(sizes):
            layers.append(nn.Tanh())
            if dropout:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def mixture(z, gamma):
    mass = gamma.sum(0) + 1e-12
    phi = mass / len(z)
    mu = gamma.t() @ z / mass[:, None]
    diff = z[None] - mu[:, None]
    cov = (diff * gamma.t()[:, :, None]).transpose(1, 2) @ diff / mass[:, None, None]
    return phi, mu, cov + RIDGE * torch.eye(z.shape[1])


def energy(z, phi, mu, cov):
    l = torch.linalg.cholesky(cov)
    diff = (z[None] - mu[:, None]).transpose(1, 2)  # [g, k, n]
    y = torch.linalg.solve_triangular(l, diff, upper=False)
    maha = (y ** 2).sum(1).t()  # [n, g]
    log_det = 2 * torch.log(torch.diagonal(l, dim1=1, dim2=2)).sum(1) + z.shape[1] * math.log(2 * math.pi)
    return -torch.logsumexp(torch.log(phi.clamp_min(1e-12)) - 0.5 * (maha + log_det), 1)


def main():
    args = parse_args(__doc__)
    x = setup(args)
    train = windows(x, WINDOW)
    d, m = train.shape[1], x.shape[1]
    sizes = [d, *HIDDEN, LATENT]
    encoder, decoder = tanh_stack(sizes), tanh_stack(sizes[::-1])
    estimation = tanh_stack([LATENT + 2, EST, G], dropout=0.5)
    params = [*encoder.parameters(), *decoder.parameters(), *estimation.parameters()]
    opt = torch.optim.Adam(params, lr=1e-4)

    def compress(b):
        code = encoder(b)
        rec = decoder(code)
        err = (b - rec) ** 2
        b_norm = (b.pow(2).sum(1) + 1e-10).sqrt()
        rel = (err.sum(1) + 1e-10).sqrt() / (b_norm + 1e-6)
        cos = (b * rec).sum(1) / (b_norm * (rec.pow(2).sum(1) + 1e-10).sqrt() + 1e-6)
        return torch.cat([code, rel[:, None], cos[:, None]], 1), err

    def epoch():
        for idx in torch.randperm(len(train)).split(BATCH):
            if len(idx) < 2:
                continue
            z, err = compress(train[idx])
            gamma = torch.softmax(estimation(z), 1)
            phi, mu, cov = mixture(z, gamma)
            loss = err.sum(1).mean() + L1 * energy(z, phi, mu, cov).mean() + \
                L2 * (1 / torch.diagonal(cov, dim1=1, dim2=2)).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()

    seconds = [timed(epoch)[1] for _ in range(args.epochs)]
    encoder.eval(), decoder.eval(), estimation.eval()
    with torch.no_grad():
        zs, gs = [], []
        for b in train.split(8192):
            z, _ = compress(b)
            zs.append(z)
            gs.append(torch.softmax(estimation(z), 1))
        phi, mu, cov = mixture(torch.cat(zs), torch.cat(gs))
    test = padded_windows(x, WINDOW)

    def score():
        with torch.no_grad():
            out = []
            for b in test.split(8192):
                z, err = compress(b)
                e = energy(z, phi, mu, cov)
                per = err.view(len(b), WINDOW, m).sum(1)
                out.append(per / per.sum(1, keepdim=True) * e[:, None])
            return torch.cat(out)

    score_seconds = median_seconds(score)
    report("dagmm", seconds, score_seconds, len(test))


if __name__ == "__main__":
    main()
