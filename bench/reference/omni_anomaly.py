"""OmniAnomaly as crates/vigil-models/src/detectors/omni_anomaly/ builds it, in PyTorch, for vigil's speed
comparison: q = GRU (metrics -> 64) + two linear layers (64); each step's latent (3) drawn from a
Gaussian on [features_t, z_{t-1}] (the connected posterior, a Python loop over the 100 steps, as
the authors' tf.scan); 20 planar flow layers; the linear Gaussian state-space prior evaluated in
closed form (z^T Sigma^-1 z with Sigma_ij = min(i, j) + delta_ij); p = GRU (3 -> 64) + two linear
layers + mean and softplus std per metric. Window 100, batch 50, Adam lr 1e-3, gradient norm
clipped to 10 per parameter (the authors' tf.clip_by_norm per variable); loss = negative ELBO
summed over a window, averaged over the batch. Scoring: one front-padded window per point,
latents on the posterior-mean path, negative log-likelihood of the newest step.

    python3 bench/reference/omni_anomaly.py --data smd_like.npy --epochs 3
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from common import median_seconds, parse_args, report, setup, timed

WINDOW, HIDDEN, DENSE, LATENT, FLOWS, BATCH, EPS = 100, 64, 64, 3, 20, 50, 1e-4
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class PlanarFlow(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(FLOWS, LATENT) * 0.05)
        self.u = nn.Parameter(torch.randn(FLOWS, LATENT) * 0.05)
        self.b = nn.Parameter(torch.zeros(FLOWS, 1))

    def forward(self, z):
        wu = (self.w * self.u).sum(1, keepdim=True)
        m = F.softplus(wu) - 1
        u_hat = self.u + (m - wu) * self.w / (self.w ** 2).sum(1, keepdim=True)
        log_det = torch.zeros(z.shape[0], 1)
        for k in range(FLOWS):
            h = torch.tanh(z @ self.w[k:k + 1].t() + self.b[k])
            z = z + h * u_hat[k:k + 1]
            log_det = log_det + torch.log(1 + (1 - h ** 2) * m[k])
        return z, log_det


class OmniAnomaly(nn.Module):
    def __init__(self, metrics):
        super().__init__()
        self.q_rnn = nn.GRU(metrics, HIDDEN, batch_first=True)
        self.q_dense = nn.Sequential(nn.Linear(HIDDEN, DENSE), nn.Linear(DENSE, DENSE))
        self.features = nn.Linear(DENSE, 2 * LATENT)
        self.previous = nn.Linear(LATENT, 2 * LATENT, bias=False)
        self.flow = PlanarFlow()
        self.p_rnn = nn.GRU(LATENT, HIDDEN, batch_first=True)
        self.p_dense = nn.Sequential(nn.Linear(HIDDEN, DENSE), nn.Linear(DENSE, DENSE))
        self.x_mean = nn.Linear(DENSE, metrics)
        self.x_std = nn.Linear(DENSE, metrics)
        steps = torch.arange(1, WINDOW + 1, dtype=torch.float64)
        sigma = torch.minimum(steps[:, None], steps[None, :]) + torch.eye(WINDOW, dtype=torch.float64)
        self.precision = torch.linalg.inv(sigma).float()
        self.log_det_sigma = torch.logdet(sigma).item()

    def posterior(self, x, noise):
        pre = self.features(self.q_dense(self.q_rnn(x)[0]))
        z, stds = torch.zeros(x.shape[0], LATENT), []
        latents = []
        for t in range(WINDOW):
            p = pre[:, t] + self.previous(z)
            mean, std = p[:, :LATENT], F.softplus(p[:, LATENT:]) + EPS
            z = mean if noise is None else mean + std * noise[:, t]
            latents.append(z)
            stds.append(std)
        return torch.stack(latents, 1), torch.stack(stds, 1)

    def decode(self, z):
        d = self.p_dense(self.p_rnn(z)[0])
        return self.x_mean(d), F.softplus(self.x_std(d)) + EPS

    def negative_elbo(self, x):
        b = x.shape[0]
        noise = torch.randn(b, WINDOW, LATENT)
        z0, std = self.posterior(x, noise)
        log_q = -(torch.log(std) + 0.5 * noise ** 2 + HALF_LOG_2PI).reshape(b, -1).sum(1)
        z, log_det = self.flow(z0.reshape(-1, LATENT))
        log_q = log_q - log_det.reshape(b, WINDOW).sum(1)
        z = z.reshape(b, WINDOW, LATENT)
        rows = z.transpose(1, 2).reshape(-1, WINDOW)
        quad = ((rows @ self.precision) * rows).sum(1).reshape(b, LATENT).sum(1)
        log_prior = -0.5 * quad - LATENT * 0.5 * (self.log_det_sigma + WINDOW * 2 * HALF_LOG_2PI)
        mean, std = self.decode(z)
        nll = (torch.log(std) + 0.5 * ((x - mean) / std) ** 2 + HALF_LOG_2PI).reshape(b, -1).sum(1)
        return nll - log_prior + log_q


def main():
    args = parse_args(__doc__)
    x = setup(args)
    series = torch.from_numpy(x)
    view = series.unfold(0, WINDOW, 1)  # [n, metrics, window], no copy
    model = OmniAnomaly(x.shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def epoch():
        for idx in torch.randperm(len(view)).split(BATCH):
            loss = model.negative_elbo(view[idx].transpose(1, 2)).mean()
            opt.zero_grad()
            loss.backward()
            for p in model.parameters():
                torch.nn.utils.clip_grad_norm_(p, 10.0)
            opt.step()

    seconds = [timed(epoch)[1] for _ in range(args.epochs)]

    padded = torch.cat([series[:1].repeat(WINDOW - 1, 1), series])
    test = padded.unfold(0, WINDOW, 1)

    def score():
        with torch.no_grad():
            out = []
            for start in range(0, len(test), 256):
                b = test[start:start + 256].transpose(1, 2)
                z, _ = model.posterior(b, None)
                z, _ = model.flow(z.reshape(-1, LATENT))
                d = model.p_dense(model.p_rnn(z.reshape(b.shape[0], WINDOW, LATENT))[0][:, -1:, :])
                mean, std = model.x_mean(d), F.softplus(model.x_std(d)) + EPS
                xs = b[:, -1:, :]
                out.append((torch.log(std) + 0.5 * ((xs - mean) / std) ** 2 + HALF_LOG_2PI)[:, 0, :])
            return torch.cat(out)

    score_seconds = median_seconds(score)
    report("omni-anomaly", seconds, score_seconds, len(test))


if __name__ == "__main__":
    main()
