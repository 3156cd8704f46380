"""vigil: anomaly detection for multivariate time series, over vigil's Rust core.

    import numpy as np, vigil
    detector = vigil.Detector("usad", window=10, epochs=5, seed=0).fit(X_train)
    scores = detector.score(X_test)            # total and per-metric scores
    alarms = detector.predict(X_test)          # under the model's label-free threshold
    f1 = vigil.metrics.f1(alarms, labels)

Models are values: ``to_bytes``/``from_bytes``, ``save``/``load`` of the model directories
``vigil train`` writes, and pickling (as bytes). Thresholds are separate objects
(``vigil.thresholds.Auto().fit(calibration).predict(scores)``) and metrics plain functions
(``vigil.metrics``). Errors are raised as ``ValueError`` (bad input), ``OSError`` (files) or
``RuntimeError`` (a fit that failed), each with vigil's message.
"""

from . import metrics, thresholds
from ._detector import Detector, Scores, detectors
from ._native import __version__

__all__ = ["Detector", "Scores", "detectors", "metrics", "thresholds", "__version__"]
