"""The aggregator's errors: each names what is wrong so an operator can act on it."""

from __future__ import annotations

from dataclasses import dataclass


class InputError(ValueError):
    """A forecast, award or setting the aggregator cannot use; the message names field and rule."""


@dataclass(frozen=True)
class Violation:
    """A constraint family of one device (or grid node) that had to be relaxed."""

    asset_id: str
    family: str
    amount: float
    unit: str
    first_interval: str

    def describe(self) -> str:
        return f"{self.asset_id}: {self.family} short by {self.amount:.3g} {self.unit} (from {self.first_interval})"


class InfeasibleError(RuntimeError):
    """No schedule meets every constraint; ``violations`` says which device and family conflict."""

    def __init__(self, what: str, violations: list[Violation]) -> None:
        self.violations = violations
        lines = "\n  - ".join(v.describe() for v in violations)
        super().__init__(
            f"{what} is infeasible; the relaxed model had to break:\n  - {lines}\n"
            "(the relaxed fallback prices each break at an explicit penalty; see aggregator/README.md)"
        )


class SolverFailed(RuntimeError):
    """The solver stopped without an answer (numerical trouble, not infeasibility)."""
