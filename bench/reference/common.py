"""Shared harness for the PyTorch reference scripts: data, timing and peak memory.

Each reference script builds the same architecture as its vigil detector (same layer sizes,
window, batch size and optimiser) so that `bench/speed.sh` can time both on one machine.
"""
import argparse
import json
import resource
import time

import numpy as np
import torch


def parse_args(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--data", required=True, help=".npy file (time x metrics, float32, in [0, 1])")
    p.add_argument("--epochs", type=int, default=3, help="epochs to time (the first is warm-up)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


def setup(args):
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    return np.load(args.data).astype(np.float32)


def windows(x, w):
    """Every full window, flattened row-major (time x metrics), as vigil's windows_ending_at."""
    n = len(x) - w + 1
    idx = np.arange(w)[None, :] + np.arange(n)[:, None]
    return torch.from_numpy(x[idx].reshape(n, -1).copy())


def padded_windows(x, w):
    """One window per point, front-padded with the first row, as vigil scores every point."""
    pad = np.repeat(x[:1], w - 1, axis=0)
    return windows(np.concatenate([pad, x]), w)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def report(model, epoch_seconds, score_seconds, n_scored):
    """One JSON line: seconds per epoch (mean after the warm-up epoch), points scored per second."""
    timed = epoch_seconds[1:] or epoch_seconds
    print(json.dumps({
        "implementation": "pytorch " + torch.__version__,
        "model": model,
        "threads": torch.get_num_threads(),
        "epoch_seconds": sum(timed) / len(timed),
        "score_points_per_second": n_scored / score_seconds,
        "peak_rss_mb": peak_rss_mb(),
    }))


def timed(f):
    t = time.perf_counter()
    out = f()
    return out, time.perf_counter() - t


SCORE_REPEATS = 5


def median_seconds(f, repeats=SCORE_REPEATS):
    """Median wall time of `repeats` calls of f: one scoring pass is tens of milliseconds, too
    short to time once on a shared machine. vigil's bench (benches/speed.rs) does the same."""
    times = sorted(timed(f)[1] for _ in range(repeats))
    return times[len(times) // 2]
