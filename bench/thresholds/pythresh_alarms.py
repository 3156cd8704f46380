"""PyThresh's thresholders on the scores kept by `vigil bench --keep-scores`, for the thresholds
table (bench/results/thresholds.md). PyThresh (the PyOD companion) judges a whole batch: each
method gets an entity's test scores and returns 0/1 per point. The alarms are written as
`OUT/<detector>/<entity>.json` ({"pythresh:METHOD": [0, 1, ...]}), which
`vigil thresholds --external OUT` judges with the same measures as vigil's own rules.

Methods that fail on an entity (some refuse constant or tiny inputs) raise no alarm there,
and the failure is counted in OUT/failures.json. Seven of PyThresh 1.1's thresholders are left
out because they cannot judge this benchmark in the time it has (seconds measured on this
2-core machine on one 28,000-point series, SMD's test length): BOOT, CLUST, KARCH and REGR
did not finish in 40 s (BOOT was killed for memory), GAMGMM took 275 s on a 747-point SKAB
series, MCST took 25 s; VAE needs PyTorch. The 23 left include the ones PyThresh's README
recommends (MIXMOD, its benchmark's best; FILTER, META; CLF, its most robust). CLUST, CPD and
META need pyclustering, ruptures, pandas and scikit-lego beside pythresh.

    python bench/thresholds/pythresh_alarms.py SCORES_DIR OUT_DIR [DETECTORS]
"""
import importlib
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

METHODS = [
    "AUCP", "CHAU", "CLF", "CPD", "DECOMP", "DSN", "EB", "FGD", "FILTER", "FWFM", "GESD",
    "HIST", "IQR", "MAD", "META", "MIXMOD", "MOLL", "MTT", "OCSVM", "QMCD", "WIND", "YJ",
    "ZSCORE",
]


def thresholder(name):
    module = importlib.import_module(f"pythresh.thresholds.{name.lower()}")
    return getattr(module, name)()


def main(scores_dir, out_dir, detectors=None):
    scores_dir, out_dir = Path(scores_dir), Path(out_dir)
    keep = set(detectors.split(",")) if detectors else None
    failures, seconds = {}, {m: 0.0 for m in METHODS}
    for path in sorted(scores_dir.rglob("*.json")):
        entity = path.relative_to(scores_dir)  # <detector>/<entity>.json; SKAB's entities nest
        if keep is not None and entity.parts[0] not in keep:
            continue
        target = out_dir / entity
        if target.exists():
            continue
        saved = json.loads(path.read_text())
        test = np.nan_to_num(np.asarray(saved["test"], dtype=float), posinf=1e300, neginf=-1e300)
        alarms = {}
        for name in METHODS:
            started = time.perf_counter()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    flags = np.asarray(thresholder(name).eval(test)).astype(int)
                alarms[f"pythresh:{name}"] = [int(f != 0) for f in flags]
            except Exception as e:  # a method's own refusal: no alarm, counted
                failures.setdefault(name, []).append(f"{entity}: {e}"[:200])
                alarms[f"pythresh:{name}"] = [0] * len(test)
            seconds[name] += time.perf_counter() - started
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(alarms))
        tmp.replace(target)
        print(entity, file=sys.stderr)
    out_dir.mkdir(parents=True, exist_ok=True)
    # A resumed run adds to what the earlier runs recorded.
    record = out_dir / "failures.json"
    if record.exists():
        earlier = json.loads(record.read_text())
        for name, where in earlier["failures"].items():
            failures.setdefault(name, [])[:0] = where
        for name, s in earlier["seconds"].items():
            seconds[name] = seconds.get(name, 0.0) + s
    record.write_text(json.dumps({"failures": failures, "seconds": seconds}, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:4])
