"""TranAD in PyTorch, as the authors' code builds and trains it, for vigil's speed comparison.

Same architecture as crates/vigil-models/src/detectors/tranad/: d_model = 2F, F heads, one encoder and two
decoder layers without layer norm, feed-forward 16 with LeakyReLU(True) (slope 1), dropout 0.1,
window 10, batch 128, AdamW lr 1e-4 weight decay 1e-5.

    python3 bench/reference/tranad.py --data smd_like.npy --epochs 3
"""
import math

import torch
import torch.nn as nn

from common import median_seconds, padded_windows, parse_args, report, setup, timed, windows

WINDOW, BATCH, FF, DROPOUT = 10, 128, 16, 0.1


class FeedForward(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.inner, self.outer = nn.Linear(d, FF), nn.Linear(FF, d)
        self.act, self.drop = nn.LeakyReLU(True), nn.Dropout(DROPOUT)

    def forward(self, x):
        return self.outer(self.drop(self.act(self.inner(x))))


class Encoder(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.attn = nn.MultiheadAttention(d, heads, dropout=DROPOUT)
        self.ff, self.drop = FeedForward(d), nn.Dropout(DROPOUT)

    def forward(self, x):
        x = x + self.drop(self.attn(x, x, x)[0])
        return x + self.drop(self.ff(x))


class Decoder(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d, heads, dropout=DROPOUT)
        self.cross_attn = nn.MultiheadAttention(d, heads, dropout=DROPOUT)
        self.ff, self.drop = FeedForward(d), nn.Dropout(DROPOUT)

    def forward(self, t, memory):
        t = t + self.drop(self.self_attn(t, t, t)[0])
        t = t + self.drop(self.cross_attn(t, memory, memory)[0])
        return t + self.drop(self.ff(t))


class TranAD(nn.Module):
    def __init__(self, feats):
        super().__init__()
        d = 2 * feats
        self.feats = feats
        p = torch.arange(WINDOW, dtype=torch.float).unsqueeze(1)
        f = torch.exp(torch.arange(d).float() * (-math.log(10000.0) / d))
        self.register_buffer("pe", (torch.sin(p * f) + torch.cos(p * f)).unsqueeze(1))
        self.drop = nn.Dropout(DROPOUT)
        self.encoder = Encoder(d, feats)
        self.decoder1, self.decoder2 = Decoder(d, feats), Decoder(d, feats)
        self.fcn = nn.Sequential(nn.Linear(d, feats), nn.Sigmoid())

    def memory(self, src, c):
        x = torch.cat((src, c), dim=2) * math.sqrt(self.feats)
        return self.encoder(self.drop(x + self.pe))

    def forward(self, src):  # src: [K, B, F], sequence first as in the authors' code
        tgt = src[-1:].repeat(1, 1, 2)
        x1 = self.fcn(self.decoder1(tgt, self.memory(src, torch.zeros_like(src))))
        x2 = self.fcn(self.decoder2(tgt, self.memory(src, (x1 - src) ** 2)))
        return x1, x2


def main():
    args = parse_args(__doc__)
    x = setup(args)
    feats = x.shape[1]
    train = windows(x, WINDOW).view(-1, WINDOW, feats)
    model = TranAD(feats)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-5)

    def epoch(n):
        model.train()
        for idx in torch.randperm(len(train)).split(BATCH):
            src = train[idx].permute(1, 0, 2)
            elem = src[-1:]
            x1, x2 = model(src)
            loss = torch.mean(1 / n * (x1 - elem) ** 2 + (1 - 1 / n) * (x2 - elem) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()

    seconds = [timed(lambda: epoch(n + 1))[1] for n in range(args.epochs)]
    test = padded_windows(x, WINDOW).view(-1, WINDOW, feats)

    def score():
        model.eval()
        with torch.no_grad():
            out = []
            for b in test.split(2048):
                src = b.permute(1, 0, 2)
                _, x2 = model(src)
                out.append(((x2 - src[-1:]) ** 2)[0])
            return torch.cat(out)

    score_seconds = median_seconds(score)
    report("tranad", seconds, score_seconds, len(test))


if __name__ == "__main__":
    main()
