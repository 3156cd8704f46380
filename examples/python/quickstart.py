# %% [markdown]
# # vigil from Python: train, score, threshold, evaluate, plot
#
# A notebook in script form (each `# %%` is a cell in VS Code or Jupytext). Run it with
# `python examples/python/quickstart.py [output.png]` after `pip install . matplotlib`.
# The data is generated here: a service's CPU, memory and latency, with an incident.

# %%
import sys

import numpy as np

import vigil

rng = np.random.default_rng(0)


def service_metrics(steps: int) -> np.ndarray:
    """A daily load curve (a period of 288 five-minute steps) driving CPU, memory and latency."""
    t = np.arange(steps)
    load = 0.5 + 0.4 * np.sin(2 * np.pi * t / 288)
    cpu = 20 + 60 * load + rng.normal(0, 2, steps)
    memory = 40 + 10 * load + rng.normal(0, 0.5, steps)
    latency = 80 + 40 * load**2 + rng.normal(0, 3, steps)
    return np.stack([cpu, memory, latency], axis=1)


train = service_metrics(4 * 288)
test = service_metrics(2 * 288)
labels = np.zeros(len(test), dtype=int)
# The incident: latency climbs and CPU with it for an hour and a half, while memory stays put.
test[350:368, 2] += np.linspace(60, 120, 18)
test[350:368, 0] += 15
labels[350:368] = 1

# %% [markdown]
# Train USAD (Audibert et al., KDD 2020) with a quarter of the training period held out to
# calibrate the label-free threshold on. Every keyword but the training choices is a config key.

# %%
detector = vigil.Detector("usad", window=12, epochs=10, seed=0, calibration_share=0.25)
detector.fit(train, metric_names=["cpu", "memory", "latency"])
print(detector)

# %% [markdown]
# Score the test period (total and per metric), then alarm with the model's threshold rule
# (`auto`: SPOT calibrated on the held-out scores).

# %%
scores = detector.score(test)
thresholds, alarms = detector.decide(scores.total)
print(f"{alarms.sum()} alarmed steps of {len(alarms)}")
top = np.argsort(-scores.per_metric[350:368].sum(axis=0))
print("metrics most to blame for the incident:", [scores.metric_names[i] for i in top])

# %% [markdown]
# Evaluate honestly: point-wise F1 and affiliation beside the point-adjusted F1, VUS-PR, and
# the best F1 over all thresholds (an oracle that looks at the labels).

# %%
m = vigil.metrics
print(f"F1 {m.f1(alarms, labels):.3f}  PA-F1 {m.pa_f1(alarms, labels):.3f}  "
      f"affiliation F1 {m.affiliation(alarms, labels)['f1']:.3f}  "
      f"VUS-PR {m.vus_pr(scores.total, labels):.3f}  best F1 (oracle) {m.best_f1(scores.total, labels)['f1']:.3f}")

# %% [markdown]
# Models are values: bytes for a store or another process, or the directory `vigil detect` reads.

# %%
again = vigil.Detector.from_bytes(detector.to_bytes())
assert (again.score(test).total == scores.total).all()

# %% [markdown]
# Plot the metrics, the score against its threshold, and the alarms.

# %%
try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    sys.exit("matplotlib is not installed: pip install matplotlib to draw the figure")

fig, axes = plt.subplots(4, 1, figsize=(10, 8), sharex=True)
for ax, name, column in zip(axes, scores.metric_names, test.T):
    ax.plot(column, lw=0.8)
    ax.set_ylabel(name)
axes[3].semilogy(scores.total, lw=0.8, label="score")
axes[3].semilogy(thresholds, lw=0.8, color="k", ls="--", label="threshold")
for ax in axes:
    for start in np.flatnonzero(np.diff(np.r_[0, alarms]) == 1):
        end = start + np.argmin(np.r_[alarms[start:], 0])
        ax.axvspan(start, end, color="red", alpha=0.2)
axes[3].legend(loc="upper left")
axes[3].set_xlabel("step (5 minutes)")
output = sys.argv[1] if len(sys.argv) > 1 else "vigil-quickstart.png"
fig.savefig(output, dpi=100, bbox_inches="tight")
print(f"figure written to {output}")
