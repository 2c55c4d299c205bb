"""Scorers by benchmark kind; importing this package registers every kind (one import line per kind)."""

from agorabench.evaluation.scorers import code, math  # noqa: F401  (registers "code", "math")
from agorabench.evaluation.scorers.base import (
    Score,
    Scorer,
    get_scorer,
    match_predictions,
    register,
    scorer_kinds,
)

__all__ = ["Score", "Scorer", "get_scorer", "match_predictions", "register", "scorer_kinds"]
