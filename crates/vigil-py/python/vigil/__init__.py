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

import os
from typing import Optional, Union

import numpy as np

from . import federated, fleet, metrics, thresholds
from ._detector import Detector, Scores, detectors
from ._native import __version__


def read_series(path: Union[str, os.PathLike]) -> tuple[np.ndarray, list[str], Optional[np.ndarray]]:
    """A series file as the CLI reads it (``.csv`` with a header, ``.npy``, ``.txt``): its
    values (steps × metrics, float64), metric names, and 0/1 labels when the file has them."""
    from . import _native

    return _native.read_series(os.fspath(path))


def set_threads(threads: int) -> None:
    """Sizes the pool vigil's parallel work runs on (default: one thread per core); only before
    the first model is built or scored in this process."""
    from . import _native

    _native.set_threads(threads)


__all__ = [
    "Detector", "Scores", "detectors", "federated", "fleet", "metrics", "read_series", "set_threads", "thresholds",
    "__version__",
]
