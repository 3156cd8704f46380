"""The Anomaly Transformer of crates/vigil-models/src/detectors/anomaly_transformer/ in PyTorch, for vigil's
speed comparison: token embedding = Conv1d(metrics -> 64, kernel 3, circular padding, no bias) +
sinusoidal positions; 3 encoder layers of anomaly-attention (8 heads; series = softmax(QK^T/sqrt(e)),
prior = Gaussian over |i - j| with sigma = 3^(sigmoid(5s) + 1e-5) - 1, normalised per row), residual
+ LayerNorm, feed-forward 64 -> 64 (GELU) -> 64, residual + LayerNorm; final LayerNorm; linear
reconstruction. Window 100, batch 256, Adam lr 1e-4 halved every epoch, k = 3; the minimax loss
(rec - k D(series, prior.detach())) + (rec + k D(prior, series.detach())) back-propagated once
(the authors call backward on each half; the gradients are the same sum). Scoring as vigil: one
front-padded window per point, the newest step's discrepancy and squared error, the discrepancy
softmaxed (temperature 50) over each point's 100 trailing points.

    python3 bench/reference/anomaly_transformer.py --data smd_like.npy --epochs 3
"""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from common import median_seconds, parse_args, report, setup, timed

WINDOW, D_MODEL, HEADS, LAYERS, D_FF, BATCH, K, TEMPERATURE = 100, 64, 8, 3, 64, 256, 3.0, 50.0


def kl_rows(p, q):
    return (p * (torch.log(p + 1e-4) - torch.log(q + 1e-4))).sum(-1).mean(1)  # [B, L]


class AnomalyAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.q, self.k, self.v = (nn.Linear(D_MODEL, D_MODEL) for _ in range(3))
        self.sigma = nn.Linear(D_MODEL, HEADS)
        self.out = nn.Linear(D_MODEL, D_MODEL)
        steps = torch.arange(WINDOW, dtype=torch.float32)
        self.register_buffer("dist2", ((steps[:, None] - steps[None, :]) ** 2)[None, None])

    def forward(self, x):
        b, l, d = x.shape
        e = d // HEADS
        split = lambda t: t.view(b, l, HEADS, e).transpose(1, 2)
        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        series = torch.softmax(q @ k.transpose(2, 3) / math.sqrt(e), -1)
        context = (series @ v).transpose(1, 2).reshape(b, l, d)
        sigma = torch.pow(3, torch.sigmoid(5 * self.sigma(x).transpose(1, 2)) + 1e-5) - 1
        prior = torch.softmax(-self.dist2 / (2 * sigma.unsqueeze(-1) ** 2), -1)
        return self.out(context), series, prior


class EncoderLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.attention = AnomalyAttention()
        self.norm1, self.norm2 = nn.LayerNorm(D_MODEL), nn.LayerNorm(D_MODEL)
        self.ff1, self.ff2 = nn.Linear(D_MODEL, D_FF), nn.Linear(D_FF, D_MODEL)

    def forward(self, x):
        attended, series, prior = self.attention(x)
        x = self.norm1(x + attended)
        return self.norm2(x + self.ff2(F.gelu(self.ff1(x)))), series, prior


class AnomalyTransformer(nn.Module):
    def __init__(self, metrics):
        super().__init__()
        self.token = nn.Conv1d(metrics, D_MODEL, 3, padding=1, padding_mode="circular", bias=False)
        pe = torch.zeros(WINDOW, D_MODEL)
        position = torch.arange(WINDOW).float()[:, None]
        rate = torch.exp(torch.arange(0, D_MODEL, 2).float() * -(math.log(10000.0) / D_MODEL))
        pe[:, 0::2], pe[:, 1::2] = torch.sin(position * rate), torch.cos(position * rate)
        self.register_buffer("pe", pe[None])
        self.layers = nn.ModuleList(EncoderLayer() for _ in range(LAYERS))
        self.norm = nn.LayerNorm(D_MODEL)
        self.projection = nn.Linear(D_MODEL, metrics)

    def forward(self, x):
        h = self.token(x.transpose(1, 2)).transpose(1, 2) + self.pe
        associations = []
        for layer in self.layers:
            h, series, prior = layer(h)
            associations.append((series, prior))
        return self.projection(self.norm(h)), associations


def main():
    args = parse_args(__doc__)
    x = setup(args)
    series = torch.from_numpy(x)
    view = series.unfold(0, WINDOW, 1)  # [n, metrics, window], no copy
    model = AnomalyTransformer(x.shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    epochs_done = [0]

    def epoch():
        for group in opt.param_groups:
            group["lr"] = 1e-4 * 0.5 ** epochs_done[0]
        for idx in torch.randperm(len(view)).split(BATCH):
            b = view[idx].transpose(1, 2)
            out, associations = model(b)
            rec = ((out - b) ** 2).mean()
            s_term = sum(kl_rows(s, p.detach()).mean() + kl_rows(p.detach(), s).mean()
                         for s, p in associations) / LAYERS
            p_term = sum(kl_rows(p, s.detach()).mean() + kl_rows(s.detach(), p).mean()
                         for s, p in associations) / LAYERS
            loss = (rec - K * s_term) + (rec + K * p_term)
            opt.zero_grad()
            loss.backward()
            opt.step()
        epochs_done[0] += 1

    seconds = [timed(epoch)[1] for _ in range(args.epochs)]

    padded = torch.cat([series[:1].repeat(WINDOW - 1, 1), series])
    test = padded.unfold(0, WINDOW, 1)

    def score():
        with torch.no_grad():
            discrepancy, errors = [], []
            for start in range(0, len(test), 32):
                b = test[start:start + 32].transpose(1, 2)
                out, associations = model(b)
                d = sum(kl_rows(s, p) + kl_rows(p, s) for s, p in associations)[:, -1]
                discrepancy.append(d)
                errors.append((out[:, -1] - b[:, -1]) ** 2)
            logits = (-TEMPERATURE * torch.cat(discrepancy)).double().numpy()
            errors = torch.cat(errors).numpy()
            weights = np.empty(len(logits))
            for t in range(len(logits)):
                span = logits[max(0, t - WINDOW + 1):t + 1]
                top = span.max()
                weights[t] = np.exp(logits[t] - top) / np.exp(span - top).sum()
            return errors * weights[:, None] / errors.shape[1]

    score_seconds = median_seconds(score)
    report("anomaly-transformer", seconds, score_seconds, len(test))


if __name__ == "__main__":
    main()
