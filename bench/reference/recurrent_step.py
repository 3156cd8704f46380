"""One Adam step of an LSTM (or GRU) encoder-decoder in PyTorch, the model of
crates/vigil-models/benches/recurrent_step.rs: batch 64, window 100, 38 metrics, hidden 64;
the encoder's last hidden state, repeated over the window, feeds the decoder; a linear layer
maps back to the metrics; mean squared reconstruction error. Prints one JSON line.

    python3 bench/reference/recurrent_step.py --cell lstm --steps 20
"""
import argparse
import json
import resource
import time

import torch

BATCH, WINDOW, METRICS, HIDDEN = 64, 100, 38, 64


class EncoderDecoder(torch.nn.Module):
    def __init__(self, cell):
        super().__init__()
        layer = torch.nn.LSTM if cell == "lstm" else torch.nn.GRU
        self.encoder = layer(METRICS, HIDDEN, batch_first=True)
        self.decoder = layer(HIDDEN, HIDDEN, batch_first=True)
        self.out = torch.nn.Linear(HIDDEN, METRICS)

    def forward(self, x):
        h, _ = self.encoder(x)
        h, _ = self.decoder(h[:, -1:, :].repeat(1, WINDOW, 1))
        return self.out(h)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--cell", choices=["lstm", "gru"], default="lstm")
    p.add_argument("--steps", type=int, default=20)
    args = p.parse_args()
    torch.manual_seed(0)
    model = EncoderDecoder(args.cell)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(BATCH, WINDOW, METRICS)
    for step in range(args.steps + 2):
        if step == 2:
            started = time.perf_counter()
        opt.zero_grad()
        loss = ((model(x) - x) ** 2).mean()
        loss.backward()
        opt.step()
    ms = (time.perf_counter() - started) * 1000.0 / args.steps
    print(json.dumps({
        "model": f"{args.cell} encoder-decoder step",
        "implementation": f"PyTorch {torch.__version__}",
        "ms_per_step": ms,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }))


if __name__ == "__main__":
    main()
