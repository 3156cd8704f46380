"""LSTM-NDT's forecaster of crates/vigil-models/src/detectors/lstm_ndt.rs in PyTorch, for vigil's speed
comparison: a 2-layer LSTM of 80 units reads the first 99 steps of a 100-step window, dropout 0.3
on its last state, a dense layer predicts every metric at the newest step; MSE, Adam lr 1e-3,
batch 70, every window once per epoch in a random order. Windows are cut per batch from a
strided view, as vigil does. Scoring: one front-padded window per point, |y - y_hat| per metric,
in chunks of 256 windows (as rnn_vae.py: larger chunks than vigil's 64 suit PyTorch's batched
kernels, so the reference is not handicapped).

    python3 bench/reference/lstm_ndt.py --data smd_like.npy --epochs 3
"""
import torch
import torch.nn as nn

from common import median_seconds, parse_args, report, setup, timed

WINDOW, HIDDEN, LAYERS, DROPOUT, BATCH, SCORE_CHUNK = 100, 80, 2, 0.3, 70, 256


class Forecaster(nn.Module):
    def __init__(self, metrics):
        super().__init__()
        self.lstm = nn.LSTM(metrics, HIDDEN, num_layers=LAYERS, batch_first=True)
        self.dropout = nn.Dropout(DROPOUT)
        self.head = nn.Linear(HIDDEN, metrics)

    def forward(self, history):
        states, _ = self.lstm(history)
        return self.head(self.dropout(states[:, -1, :]))


def main():
    args = parse_args(__doc__)
    x = setup(args)
    series = torch.from_numpy(x)
    view = series.unfold(0, WINDOW, 1)  # [n, metrics, window], no copy
    model = Forecaster(x.shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def epoch():
        model.train()
        for idx in torch.randperm(len(view)).split(BATCH):
            b = view[idx].transpose(1, 2)
            loss = ((model(b[:, :-1, :]) - b[:, -1, :]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()

    seconds = [timed(epoch)[1] for _ in range(args.epochs)]

    padded = torch.cat([series[:1].repeat(WINDOW - 1, 1), series])
    test = padded.unfold(0, WINDOW, 1)

    def score():
        model.eval()
        with torch.no_grad():
            out = []
            for start in range(0, len(test), SCORE_CHUNK):
                b = test[start:start + SCORE_CHUNK].transpose(1, 2)
                out.append((b[:, -1, :] - model(b[:, :-1, :])).abs())
            return torch.cat(out)

    score_seconds = median_seconds(score)
    report("lstm-ndt", seconds, score_seconds, len(test))


if __name__ == "__main__":
    main()
