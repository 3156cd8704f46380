"""Turning what users pass (lists, NumPy arrays of any dtype, pandas objects) into the arrays
the native module takes: float64 values and int64 0/1 flags. ``np.asarray`` copies nothing
when the array already has the type."""

from __future__ import annotations

import json
from typing import Any, Optional, Sequence

import numpy as np


def values(x: Any, what: str) -> np.ndarray:
    """``x`` as a float64 array (its rank is checked by the native module)."""
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{what} must be numbers (an array of steps × metrics): {e}") from None


def column_names(x: Any) -> Optional[list[str]]:
    """The column names of a pandas DataFrame (or anything with ``columns``), else ``None``."""
    columns = getattr(x, "columns", None)
    return None if columns is None else [str(c) for c in columns]


def flags(x: Any, what: str) -> np.ndarray:
    """``x`` (0/1 ints, floats or booleans) as int64 flags; anything but 0 and 1 is refused
    (checked before the conversion, which could wrap a large unsigned value into range)."""
    a = np.asarray(x)
    if a.dtype.kind not in "biuf":
        raise ValueError(f"{what} must be an array of 0/1 flags, got dtype {a.dtype}")
    bad = (a != 0) & (a != 1)
    if bad.any():
        at = int(np.flatnonzero(bad.ravel())[0])
        raise ValueError(
            f"{what} must hold only 0 (normal) and 1 (anomalous), got {a.ravel()[at]} at index {at}"
        )
    return a.astype(np.int64, copy=False)


def params_json(params: dict[str, Any], what: str) -> str:
    """Parameters as the JSON the native module reads; a value JSON cannot hold (NaN, an
    infinity, an object) is refused, naming its key."""
    for key, value in params.items():
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            raise ValueError(f"{what}'s parameter `{key}` is {value!r}: it must be a finite number, "
                             "a string, a boolean or a list of them") from None
    return json.dumps(params)


def count(value: Any, what: str) -> int:
    """A non-negative integer (a seed), refused with its name otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < 2**64:
        raise ValueError(f"{what} must be an integer in [0, 2^64), got {value!r}")
    return int(value)


def same_names(given: Sequence[str], expected: Sequence[str], what: str) -> None:
    """Refuses columns named otherwise than the model's metrics, naming the difference."""
    if list(given) != list(expected):
        missing = [n for n in expected if n not in given]
        extra = [n for n in given if n not in expected]
        detail = (
            f"missing {missing}, unknown {extra}" if missing or extra else "the same names in another order"
        )
        raise ValueError(
            f"{what}'s columns are not the model's metrics ({detail}); the model was trained on {list(expected)}"
        )
