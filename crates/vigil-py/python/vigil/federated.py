"""The server's arithmetic of federated training, in vigil's Rust core, for Flower's apps (or
any other transport): models travel as ``dict[str, np.ndarray]`` of float32 tensors by name
(``Detector.export_tensors``, ``Detector.with_tensors``), the form of Flower's ``ArrayRecord``.

    uploads = [node.export_tensors(HIDDEN_LAYERS) for node in locals_]
    for node, (peers, _) in enumerate(rank_peers(uploads)):
        transfer[node] = transfer[node].with_tensors(uploads[peers[0]])   # LGF-PKT
    global_ = average([m.export_tensors() for m in locals_], weights=steps)   # FedAvg
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from . import _native

# MTAD-FL's hidden layers (the paper's Conv1-3): what LGF-PKT measures and moves between nodes.
HIDDEN_LAYERS = ("conv1", "conv2", "conv3")

Tensors = dict[str, np.ndarray]


def _arrays(tensors: Tensors) -> Tensors:
    return {str(k): np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}


def average(models: Sequence[Tensors], weights: Sequence[float]) -> Tensors:
    """FedAvg: the mean of ``models`` weighted by ``weights`` (each node's example count). Every
    model must name the same tensors with the same shapes."""
    return _native.average([_arrays(m) for m in models], [float(w) for w in weights])


def rank_peers(
    uploads: Sequence[Tensors], layers: Sequence[str] = HIDDEN_LAYERS, distance: str = "combined"
) -> list[tuple[list[int], list[float]]]:
    """LGF-PKT (MTAD-FL Eqs. 11-17): for every node of ``uploads``, the other nodes ranked by
    the distance between their tensors named after ``layers``, nearest first, with the distances.
    ``distance``: ``euclidean`` (Eq. 13), ``cosine`` (1 - Eq. 14) or ``combined`` (Eq. 15)."""
    return _native.rank([_arrays(u) for u in uploads], list(layers), distance)


__all__ = ["HIDDEN_LAYERS", "average", "rank_peers"]
