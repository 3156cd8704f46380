"""This machine's practical f32 matrix-multiply peak, for bench/speed.sh's compute-bound table.

Times PyTorch's matmul (oneDNN/MKL-class kernels on all cores) on a large square product and on
the largest layer of USAD's scoring pass; prints one JSON line with multiply-adds per second.

    python3 bench/reference/gemm_peak.py
"""
import json
import time

import torch


def macs_per_second(m, k, n, repeats=30):
    a, b = torch.randn(m, k), torch.randn(k, n)
    for _ in range(3):
        a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return m * k * n * repeats / (time.perf_counter() - start)


if __name__ == "__main__":
    print(json.dumps({
        "large_gmacs": macs_per_second(4096, 1024, 1024) / 1e9,
        "usad_layer_gmacs": macs_per_second(4096, 190, 95) / 1e9,
    }))
