"""Point-adjusted F1 on SMD under label-free thresholds; see threshold_choice.sh."""
import glob
import os
import sys

import numpy as np
from scipy.stats import genpareto


def point_adjusted_f1(pred, label):
    pred = pred.copy()
    i, n = 0, len(label)
    while i < n:
        if label[i]:
            j = i
            while j < n and label[j]:
                j += 1
            if pred[i:j].any():
                pred[i:j] = True
            i = j
        else:
            i += 1
    tp, fp, fn = (pred & label).sum(), (pred & ~label).sum(), (~pred & label).sum()
    p, r = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
    return 2 * p * r / max(p + r, 1e-12)


def pot(scores, q, level):
    t = np.quantile(scores, level)
    peaks = scores[scores > t] - t
    c, _, s = genpareto.fit(peaks, floc=0)
    r = q * len(scores) / len(peaks)
    return t - s * np.log(r) if abs(c) < 1e-9 else t + s / c * (r ** (-c) - 1)


work, data = sys.argv[1], sys.argv[2]
rules = {
    "POT train (1e-4, 0.98)": lambda cal, s: pot(cal, 1e-4, 0.98),
    "POT train (1e-3, 0.99)": lambda cal, s: pot(cal, 1e-3, 0.99),
    "TranAD protocol (1e-5, 0.99995, x1.04)": lambda cal, s: pot(cal, 1e-5, 0.99995) * 1.04,
    "max train score": lambda cal, s: cal.max(),
    "POT batch (1e-3, 0.98)": lambda cal, s: pot(s, 1e-3, 0.98),
    "POT batch (1e-2, 0.95)": lambda cal, s: pot(s, 1e-2, 0.95),
}
rows = []
for csv in sorted(glob.glob(os.path.join(work, "*.csv"))):
    m = os.path.basename(csv)[:-4]
    cal = np.fromfile(os.path.join(work, m, "calibration.f64"), "<f8")
    s = np.genfromtxt(csv, delimiter=",", skip_header=1, usecols=(1,))
    label = np.loadtxt(os.path.join(data, "test_label", m + ".txt")).astype(bool)
    normal = s[~label]
    rows.append((m, np.quantile(cal, 0.99), np.quantile(normal, 0.99),
                 [point_adjusted_f1(s >= rule(cal, s), label) for rule in rules.values()]))
print("| machine | train p99 | test-normal p99 | " + " | ".join(rules) + " |")
print("|---" * (3 + len(rules)) + "|")
for m, c99, n99, f in rows:
    print(f"| {m} | {c99:.3g} | {n99:.3g} | " + " | ".join(f"{v:.3f}" for v in f) + " |")
mean = np.mean([f for *_, f in rows], axis=0)
print("| **mean** | | | " + " | ".join(f"**{v:.3f}**" for v in mean) + " |")
