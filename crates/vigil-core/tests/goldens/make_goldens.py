"""Golden values for vigil's metrics from independent Python implementations.

    pip install numpy scikit-learn==1.9.1 tqdm tsb-ad==1.5 tadpak==0.3.3 --no-deps   # + their light deps
    python3 crates/vigil-core/tests/goldens/make_goldens.py > crates/vigil-core/tests/goldens/metrics.json

Sources: scikit-learn (ROC-AUC, average precision, precision/recall/F1, MCC), tadpak (PA%K,
Kim et al.'s code), and TSB-AD 1.5 (the affiliation reference code of Huet et al., and
VUS-ROC/VUS-PR of Paparrizos et al.). TSB-AD's modules are loaded by file so that its heavy
package imports (torch, ...) are not needed.
"""
import importlib.util
import json
import os
import sys
import types

import numpy as np
from sklearn import metrics as sk

import tadpak.pak as tadpak_pak


def load_tsb_ad():
    """TSB_AD.evaluation.{basic_metrics, affiliation} without importing TSB_AD/__init__."""
    spec = importlib.util.find_spec("TSB_AD")
    root = os.path.join(os.path.dirname(spec.origin), "evaluation")
    for name, path in [("TSB_AD", os.path.dirname(spec.origin)), ("TSB_AD.evaluation", root),
                       ("TSB_AD.evaluation.affiliation", os.path.join(root, "affiliation"))]:
        module = types.ModuleType(name)
        module.__path__ = [path]
        sys.modules[name] = module
    from TSB_AD.evaluation.affiliation.generics import convert_vector_to_events
    from TSB_AD.evaluation.affiliation.metrics import pr_from_events
    from TSB_AD.evaluation.basic_metrics import basic_metricor
    return convert_vector_to_events, pr_from_events, basic_metricor


to_events, pr_from_events, basic_metricor = load_tsb_ad()


def case(name, n, segments, seed, alarm_quantile, vus_window):
    rng = np.random.default_rng(seed)
    labels = np.zeros(n, dtype=int)
    for start, length in segments:
        labels[start:start + length] = 1
    # Scores: noise, raised inside (and just before) anomalies so that ranking is imperfect.
    scores = rng.normal(0, 1, n)
    for start, length in segments:
        scores[max(start - 3, 0):start + length] += rng.uniform(0.5, 3.0)
    threshold = np.quantile(scores, alarm_quantile)
    alarms = (scores >= threshold).astype(int)
    aff = pr_from_events(to_events(alarms), to_events(labels), (0, n))
    _, _, _, _, vus_roc, vus_pr = basic_metricor().RangeAUC_volume_opt(
        labels_original=labels, score=scores, windowSize=vus_window, thre=250)
    pa_k = {str(k): float(sk.f1_score(labels, tadpak_pak.pak(alarms.astype(float), labels, 0.5, k=k)))
            for k in (0, 20, 50, 80, 100)}
    return {
        "name": name,
        "labels": labels.tolist(),
        "scores": [float(s) for s in scores],
        "alarms": alarms.tolist(),
        "vus_window": vus_window,
        "expected": {
            "precision": float(sk.precision_score(labels, alarms, zero_division=0)),
            "recall": float(sk.recall_score(labels, alarms, zero_division=0)),
            "f1": float(sk.f1_score(labels, alarms, zero_division=0)),
            "mcc": float(sk.matthews_corrcoef(labels, alarms)),
            "roc_auc": float(sk.roc_auc_score(labels, scores)),
            "average_precision": float(sk.average_precision_score(labels, scores)),
            "pa_k_f1": pa_k,
            "affiliation_precision": float(aff["Affiliation_Precision"]),
            "affiliation_recall": float(aff["Affiliation_Recall"]),
            "vus_roc": float(vus_roc),
            "vus_pr": float(vus_pr),
        },
    }


cases = [
    case("two_segments", 400, [(100, 20), (300, 5)], 1, 0.9, 20),
    case("many_short", 1000, [(50, 3), (120, 10), (400, 1), (405, 2), (700, 40), (990, 10)], 2, 0.95, 100),
    case("edge_segments", 300, [(0, 8), (150, 30), (290, 10)], 3, 0.85, 30),
    case("long_series", 5000, [(500, 50), (1800, 5), (3000, 200), (4500, 12)], 4, 0.97, 100),
]
json.dump({"generated_by": "crates/vigil-core/tests/goldens/make_goldens.py",
           "packages": {"scikit-learn": __import__("sklearn").__version__, "tsb-ad": "1.5",
                        "tadpak": "0.3.3"},
           "cases": cases}, sys.stdout)
