"""A churn-probability calibrator stored as breakpoints and applied by interpolation."""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Calibrator:
    """A monotone map from raw model scores to calibrated probabilities."""

    x: tuple[float, ...]
    y: tuple[float, ...]

    def apply(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for raw scores (clamped at both ends)."""
        return np.interp(raw, self.x, self.y)

    def to_json(self) -> dict[str, list[float]]:
        """The breakpoints, for the model manifest."""
        return {"x": list(self.x), "y": list(self.y)}

    @classmethod
    def from_json(cls, data: dict[str, list[float]]) -> "Calibrator":
        """Inverse of to_json."""
        return cls(tuple(data["x"]), tuple(data["y"]))
