"""The run's settings (``[tool.flwr.app.config]``, overridden by ``flwr run --run-config``),
read once and checked, so that a bad value stops the run with its name rather than a node
failing half-way through a round."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

METHODS = ("mtad-fl", "fedavg", "fedtl")
DISTANCES = ("euclidean", "cosine", "combined")


class SettingsError(ValueError):
    """A run setting that is missing or out of range; the message names it."""


@dataclass(frozen=True)
class RunSettings:
    method: str
    distance: str
    rounds: int
    local_epochs: int
    seed: int
    filters: tuple[int, int, int]
    min_nodes: int
    quorum: int
    round_timeout: float
    results_file: str

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> "RunSettings":
        method = _choice(config, "method", METHODS)
        distance = _choice(config, "distance", DISTANCES)
        filters_text = str(_get(config, "filters"))
        try:
            filters = tuple(int(f) for f in filters_text.split(","))
        except ValueError:
            filters = ()
        if len(filters) != 3 or min(filters) < 1:
            raise SettingsError(
                f"filters must be three positive counts separated by commas (the three "
                f"convolutions' filters, e.g. \"128,256,128\"), got {filters_text!r}"
            )
        settings = cls(
            method=method,
            distance=distance,
            rounds=_count(config, "num-server-rounds"),
            local_epochs=_count(config, "local-epochs"),
            seed=_count(config, "seed", minimum=0),
            filters=filters,  # type: ignore[arg-type]
            min_nodes=_count(config, "min-nodes"),
            quorum=_count(config, "quorum"),
            round_timeout=_positive(config, "round-timeout"),
            results_file=str(config.get("results-file", "")),
        )
        if settings.quorum > settings.min_nodes:
            raise SettingsError(
                f"quorum ({settings.quorum}) must not exceed min-nodes ({settings.min_nodes}): "
                f"a round sent to min-nodes nodes could never reach it"
            )
        if settings.method == "mtad-fl" and settings.quorum < 2:
            raise SettingsError(
                "quorum must be at least 2 for mtad-fl: LGF-PKT gives each node another's hidden layers"
            )
        return settings

    def detector_config(self) -> dict[str, int]:
        """The config of both MTAD-FL models (Local and Transfer) at every node."""
        first, second, third = self.filters
        return {"conv1_filters": first, "conv2_filters": second, "conv3_filters": third, "epochs": self.local_epochs}

    def fine_tune_epochs(self) -> int:
        """FedTL's local fine-tune of the global model: a quarter of a round's epochs."""
        return max(1, self.local_epochs // 4)


def _get(config: Mapping[str, Any], key: str) -> Any:
    if key not in config:
        raise SettingsError(f"the run config has no {key!r}; set it in [tool.flwr.app.config] or with --run-config")
    return config[key]


def _choice(config: Mapping[str, Any], key: str, allowed: tuple[str, ...]) -> str:
    value = str(_get(config, key))
    if value not in allowed:
        raise SettingsError(f"{key} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def _count(config: Mapping[str, Any], key: str, minimum: int = 1) -> int:
    value = _get(config, key)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SettingsError(f"{key} must be an integer of at least {minimum}; got {value!r}")
    return value


def _positive(config: Mapping[str, Any], key: str) -> float:
    value = _get(config, key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise SettingsError(f"{key} must be a positive number of seconds; got {value!r}")
    return float(value)
