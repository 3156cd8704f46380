"""GON of crates/vigil-models/src/detectors/gon/ in PyTorch, for vigil's speed comparison: D = flattened
window (15 steps x metrics) -> 16 -> 16 -> 1, LeakyReLU(0.01), sigmoid; a generated window comes
from Adam on D's input (lr 0.01, cosine annealing T_max 10, clamped to the data range, stop after
more than 10 quiet iterations at tolerance 1e-3, at most 100), started from the real window; D is
trained with BCE against labels 0.9 (real) and 0.1 (generated), Adam lr 1e-3, weight decay 1e-5.

Two ways to run the same algorithm, both timed per epoch over every training window:
  --mode authors   one window at a time through autograd, as the authors' code does
                   (src/gen.py and main.py of imperial-qore/GON), D updated per window;
  --mode batched   batches of 64 windows, the search vectorised over the batch with per-window
                   stopping, D updated per batch — vigil's algorithm.
The authors' mode is slow: --limit caps the windows of an epoch and the time is scaled up.

    python3 bench/reference/gon.py --data smd_like.npy --epochs 1 --mode authors --limit 2000
"""
import argparse
import json
import time

import numpy as np
import torch
import torch.nn as nn

from common import peak_rss_mb, windows

WINDOW, HIDDEN, BATCH, REAL, FAKE = 15, 16, 64, 0.9, 0.1


def discriminator(d):
    return nn.Sequential(nn.Linear(d, HIDDEN), nn.LeakyReLU(0.01), nn.Linear(HIDDEN, HIDDEN),
                         nn.LeakyReLU(0.01), nn.Linear(HIDDEN, 1))


def search(model, start, low, high, tolerance=1e-3):
    """Adam on the input of `model` for a batch of windows, each stopping on its own."""
    z = start.clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=0.01)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)
    active = torch.ones(len(z), dtype=torch.bool)
    quiet = torch.zeros(len(z), dtype=torch.long)
    previous = torch.full((len(z),), 10.0)
    bce = nn.BCEWithLogitsLoss(reduction="none")
    for _ in range(100):
        if not active.any():
            break
        before = z.detach().clone()
        logits = model(z).squeeze(1)
        loss = bce(logits, torch.full_like(logits, REAL))
        opt.zero_grad()
        (loss * active).sum().backward()
        z.grad[~active] = 0
        opt.step()
        sched.step()
        with torch.no_grad():
            z.data = torch.where(active[:, None], torch.max(torch.min(z.data, high), low), before)
            moved = (z.data - before).abs().max(1).values
            fell = previous - loss.detach()
            still = (moved < tolerance) | ((fell > 0) & (fell < tolerance))
            quiet = torch.where(still, quiet + 1, torch.zeros_like(quiet))
            previous = loss.detach()
            active &= quiet <= 10
    return z.detach()


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", required=True)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--mode", choices=["authors", "batched"], default="batched")
    p.add_argument("--limit", type=int, default=0, help="windows per epoch (0: all)")
    args = p.parse_args()
    torch.manual_seed(0)
    x = np.load(args.data).astype(np.float32)
    train = windows(x, WINDOW)
    n_all = len(train)
    if args.limit:
        train = train[: args.limit]
    d = train.shape[1]
    low = torch.from_numpy(np.tile(x.min(0), WINDOW))
    high = torch.from_numpy(np.tile(x.max(0), WINDOW))
    model = discriminator(d)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-5)
    bce = nn.BCEWithLogitsLoss()
    step = 1 if args.mode == "authors" else BATCH

    def epoch():
        for idx in torch.randperm(len(train)).split(step):
            real = train[idx]
            fake = search(model, real, low, high)
            logits = model(torch.cat([real, fake])).squeeze(1)
            labels = torch.cat([torch.full((len(idx),), REAL), torch.full((len(idx),), FAKE)])
            loss = bce(logits, labels)
            opt.zero_grad()
            loss.backward()
            opt.step()

    seconds = []
    for _ in range(args.epochs):
        t = time.perf_counter()
        epoch()
        seconds.append((time.perf_counter() - t) * n_all / len(train))
    print(json.dumps({
        "implementation": f"pytorch {torch.__version__} ({args.mode})",
        "model": "gon",
        "threads": torch.get_num_threads(),
        "epoch_seconds": sum(seconds) / len(seconds),
        "windows_timed": len(train),
        "peak_rss_mb": peak_rss_mb(),
    }))


if __name__ == "__main__":
    main()
