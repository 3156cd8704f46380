"""Named tensors as they travel: Flower's ``ArrayRecord`` on the wire, ``dict[str, ndarray]``
(float32) in vigil's Python package."""

from __future__ import annotations

import numpy as np
from flwr.app import Array, ArrayRecord

Tensors = dict[str, np.ndarray]


def tensors_of(record: ArrayRecord) -> Tensors:
    return {name: array.numpy() for name, array in record.items()}


def array_record(tensors: Tensors) -> ArrayRecord:
    return ArrayRecord({name: Array(np.ascontiguousarray(values)) for name, values in tensors.items()})


def nbytes(tensors: Tensors) -> int:
    """The bytes of the tensors' values (what the benchmark reports as sent and received)."""
    return int(sum(t.nbytes for t in tensors.values()))
