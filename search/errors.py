"""SweepError and a collector that gathers every mistake of a sweep file before raising (torch/optuna-free)."""
from __future__ import annotations

from typing import Any, Callable


class SweepError(ValueError):
    """A sweep file mistake; the message starts with the key that holds it, e.g. 'search.regularizers.protoype'."""


class Collector:
    """Run independent validators, remember each SweepError, raise them all at once at the end."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, message: str) -> None:
        self.messages.append(message)

    def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """fn(*args, **kwargs), or None after recording its SweepError (dependent checks then see None)."""
        try:
            return fn(*args, **kwargs)
        except SweepError as exc:
            self.messages.append(str(exc))
            return None

    def raise_if_any(self) -> None:
        if len(self.messages) == 1:
            raise SweepError(self.messages[0])
        if self.messages:
            lines = "\n  ".join(self.messages)
            raise SweepError(f"{len(self.messages)} mistakes:\n  {lines}")
