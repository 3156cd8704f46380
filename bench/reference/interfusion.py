"""InterFusion as crates/vigil-models/src/detectors/interfusion/ builds it, in PyTorch, for vigil's speed
comparison of the whole-model stage (pre-training is cheaper and not timed on either side):
z2 from five strided Conv1d layers (channels = metrics, kernel 5, strides 2,1,2,1,2, ReLU) and a
1x1 head; five ConvTranspose1d layers expand it back to the window; a GRU (metrics -> 64) runs
backwards over the expansion, two dense ReLU layers (64); each step's z1 (3) drawn from a
Gaussian on [features_t, z1_{t-1}] (a Python loop over the 100 steps, as the authors' tf.scan);
20 RealNVP levels (LU-form invertible linear map + sigmoid-scaled affine coupling, hidden 100);
p(z1 | z2) connected the same way on the expansion, with the drawn z1 of the previous step;
x from [Linear(z1) | expansion] through two dense ReLU layers (64) to a mean and a clipped log
std per metric. Window 100, batch 100, Adam lr 1e-3 with weight decay 1e-4, gradient norm
clipped to 10 per parameter. Scoring: one front-padded window per point, 10 MCMC imputations of
the newest step, then the posterior-mean pass and the newest step's negative log-likelihood.

    python3 bench/reference/interfusion.py --data smd_like.npy --epochs 3
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from common import median_seconds, parse_args, report, setup, timed

WINDOW, HIDDEN, DENSE, LATENT, LEVELS, BATCH, MCMC = 100, 64, 64, 3, 20, 100, 10
STRIDES = [2, 1, 2, 1, 2]
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def lengths(window):
    out = [window]
    for s in STRIDES:
        out.append(-(-out[-1] // s))
    return out


def nll(x, mean, log_std):
    log_std = log_std.clamp(-5.0, 2.0)
    return log_std + 0.5 * ((x - mean) * torch.exp(-log_std)) ** 2 + HALF_LOG_2PI


class RealNvp(nn.Module):
    def __init__(self):
        super().__init__()
        self.lower = nn.Parameter(torch.zeros(LEVELS, LATENT, LATENT))
        self.upper = nn.Parameter(torch.zeros(LEVELS, LATENT, LATENT))
        self.log_diag = nn.Parameter(torch.zeros(LEVELS, LATENT))
        self.hidden = nn.ModuleList(nn.Linear(LATENT // 2, 100) for _ in range(LEVELS))
        self.out = nn.ModuleList(nn.Linear(100, 2 * (LATENT - LATENT // 2)) for _ in range(LEVELS))
        for o in self.out:
            nn.init.zeros_(o.weight)
            nn.init.zeros_(o.bias)
        self.register_buffer("reversal", torch.eye(LATENT).flip(0))

    def forward(self, z):
        first, rest = LATENT // 2, LATENT - LATENT // 2
        log_det = torch.zeros(z.shape[0], 1) + self.log_diag.sum()
        eye = torch.eye(LATENT)
        for k in range(LEVELS):
            lower = torch.tril(self.lower[k], -1) + eye
            upper = torch.triu(self.upper[k], 1) + torch.diag(torch.exp(self.log_diag[k]))
            z = z @ (self.reversal @ lower @ upper).t()
            kept, moved = z[:, :first], z[:, first:]
            p = self.out[k](F.relu(self.hidden[k](kept)))
            shift, pre = p[:, :rest], p[:, rest:] + 2.0
            log_det = log_det - F.softplus(-pre).sum(1, keepdim=True)
            z = torch.cat([kept, (moved + shift) * torch.sigmoid(pre)], 1)
        return z, log_det


class InterFusion(nn.Module):
    def __init__(self, m):
        super().__init__()
        ls = lengths(WINDOW)
        self.conv = nn.ModuleList(nn.Conv1d(m, m, 5, stride=s, padding=2) for s in STRIDES)
        self.q_z2 = nn.Conv1d(m, 2 * m, 1)
        self.deconv = nn.ModuleList(
            nn.ConvTranspose1d(m, m, 5, stride=STRIDES[i], padding=2,
                               output_padding=ls[i] - ((ls[i + 1] - 1) * STRIDES[i] + 1))
            for i in reversed(range(len(STRIDES))))
        self.a_rnn = nn.GRU(m, HIDDEN, batch_first=True)
        self.a_dense = nn.Sequential(nn.Linear(HIDDEN, DENSE), nn.ReLU(), nn.Linear(DENSE, DENSE), nn.ReLU())
        self.q_in, self.q_prev = nn.Linear(DENSE, 2 * LATENT), nn.Linear(LATENT, 2 * LATENT, bias=False)
        self.flow = RealNvp()
        self.p_in, self.p_prev = nn.Linear(m, 2 * LATENT), nn.Linear(LATENT, 2 * LATENT, bias=False)
        self.from_z1 = nn.Linear(LATENT, m)
        self.p_dense = nn.Sequential(nn.Linear(2 * m, DENSE), nn.ReLU(), nn.Linear(DENSE, DENSE), nn.ReLU())
        self.x_params = nn.Linear(DENSE, 2 * m)

    def forward(self, x, z2_noise, z1_noise):
        b, w, m = x.shape
        h = x.transpose(1, 2)
        for c in self.conv:
            h = F.relu(c(h))
        mean, log_std = self.q_z2(h).chunk(2, 1)
        log_std = log_std.clamp(-5.0, 2.0)
        z2 = mean + torch.exp(log_std) * z2_noise
        ratio = (0.5 * z2 ** 2 - log_std - 0.5 * z2_noise ** 2).reshape(b, -1).sum(1)
        e = z2
        for d in self.deconv:
            e = F.relu(d(e))
        e = e.transpose(1, 2)
        a = self.a_dense(self.a_rnn(e.flip(1))[0].flip(1))
        pre = self.q_in(a)
        z, latents, log_q0 = torch.zeros(b, LATENT), [], torch.zeros(b)
        for t in range(w):
            mean, log_std = (pre[:, t] + self.q_prev(z)).chunk(2, 1)
            log_std = log_std.clamp(-5.0, 2.0)
            z = mean + torch.exp(log_std) * z1_noise[:, t]
            log_q0 = log_q0 - (log_std + 0.5 * z1_noise[:, t] ** 2).sum(1)
            latents.append(z)
        z1, log_det = self.flow(torch.stack(latents, 1).reshape(-1, LATENT))
        z1 = z1.reshape(b, w, LATENT)
        shifted = torch.cat([torch.zeros(b, 1, LATENT), z1[:, :-1]], 1)
        mean, log_std = (self.p_in(e) + self.p_prev(shifted)).chunk(2, 2)
        z1_nll = (nll(z1, mean, log_std) - HALF_LOG_2PI).reshape(b, -1).sum(1)
        ratio = ratio + log_q0 - log_det.reshape(b, w).sum(1) + z1_nll
        x_mean, x_log_std = self.x_params(self.p_dense(torch.cat([self.from_z1(z1), e], 2))).chunk(2, 2)
        return ratio, x_mean, x_log_std

    def negative_elbo(self, x):
        b, w, m = x.shape
        c = lengths(w)[-1]
        ratio, mean, log_std = self(x, torch.randn(b, m, c), torch.randn(b, w, LATENT))
        return nll(x, mean, log_std).reshape(b, -1).sum(1) + ratio


def main():
    args = parse_args(__doc__)
    x = setup(args)
    series = torch.from_numpy(x)
    view = series.unfold(0, WINDOW, 1)  # [n, metrics, window], no copy
    model = InterFusion(x.shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)

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
    m, c = x.shape[1], lengths(WINDOW)[-1]

    def score():
        with torch.no_grad():
            out = []
            for start in range(0, len(test), 50):
                b = test[start:start + 50].transpose(1, 2)
                n = b.shape[0]
                current = b.clone()
                for _ in range(MCMC):
                    _, mean, log_std = model(current, torch.randn(n, m, c), torch.randn(n, WINDOW, LATENT))
                    drawn = mean[:, -1] + torch.exp(log_std[:, -1].clamp(-5.0, 2.0)) * torch.randn(n, m)
                    current[:, -1] = drawn
                _, mean, log_std = model(current, torch.zeros(n, m, c), torch.zeros(n, WINDOW, LATENT))
                out.append(nll(b[:, -1], mean[:, -1], log_std[:, -1]))
            return torch.cat(out)

    score_seconds = median_seconds(score)
    report("interfusion", seconds, score_seconds, len(test))


if __name__ == "__main__":
    main()
