"""The speed benches' data: an SMD-shaped random walk (28,479 steps x 38 metrics, min-max scaled
to [0, 1]) from a fixed seed, written as .npy. An optional step count shortens it (the first
STEPS steps of the same walk), for models too slow on CPU to time on a whole SMD machine.

    python3 bench/reference/smd_like.py OUT.npy [STEPS]
"""
import sys

import numpy as np

r = np.random.default_rng(0)
x = np.cumsum(r.normal(0, 0.01, (28479, 38)), 0)
x = (x - x.min(0)) / (x.max(0) - x.min(0))
if len(sys.argv) > 2:
    x = x[: int(sys.argv[2])]
np.save(sys.argv[1], x.astype(np.float32))
