"""A regularizer's user options: declared once, on its class, and checked before any model is built.

A regularizer lists its options in a class attribute (models/regularizers/barlow.py):

    options = {
        "lam": Option(0.005, ge=0, doc="weight of the off-diagonal terms (LM's lambda)"),
        "pairing": Option("augmentation", choices=tuple(PAIRINGS), doc="how the two views are made"),
    }

and takes each of them as a keyword of its constructor, without a default there: the RAE passes every declared
option, the declared default where nothing was given. An option's type is its default's (bool, int, float or
str); an int is accepted for a float, nothing else is converted. A config sets them as
`rae.regularizer_options.<regularizer>.<option>`, a sweep searches them under that name.

This module does not import torch: the config and the search space check option values with it, and import a
regularizer's module (and so torch) only to read its declarations, when options are given.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

Scalar = bool | int | float | str


@dataclass(frozen=True)
class Option:
    """One user option: its default (which fixes its type), valid range and what it does."""

    default: Scalar
    doc: str = ""
    ge: float | None = None  # value >= ge
    gt: float | None = None  # value > gt
    le: float | None = None  # value <= le
    choices: tuple[str, ...] | None = None  # the valid values of a str option

    @property
    def type(self) -> type:
        return type(self.default)

    def check(self, key: str, value: Any) -> Scalar:
        """`value` as this option's type; ValueError starting with `key` if it has another type or lies outside."""
        kind = self.type
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)  # lossless, as everywhere in a config
        if type(value) is not kind:
            raise ValueError(f"{key}: expected {_TYPE_WORDS[kind]}, got {value!r}")
        if kind is float and not math.isfinite(value):
            raise ValueError(f"{key}: must be finite, got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"{key}: unknown value {value!r}; choose one of {', '.join(self.choices)}")
        if self.ge is not None and not value >= self.ge:
            raise ValueError(f"{key}: must be >= {self.ge:g}, got {value!r}")
        if self.gt is not None and not value > self.gt:
            raise ValueError(f"{key}: must be > {self.gt:g}, got {value!r}")
        if self.le is not None and not value <= self.le:
            raise ValueError(f"{key}: must be <= {self.le:g}, got {value!r}")
        return value


_TYPE_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def check_options(where: str, declared: Mapping[str, Option], given: Mapping[str, Any]) -> dict[str, Scalar]:
    """Every declared option: the given value (checked) or the default. ValueError naming `<where>.<option>` for
    an option that is not declared or a value of the wrong type or out of range."""
    if not isinstance(given, Mapping):
        raise ValueError(f"{where}: expected a mapping option -> value, got {given!r}")
    for name in given:
        if name not in declared:
            known = ", ".join(declared) or "none"
            raise ValueError(f"{where}.{name}: unknown option (known: {known})")
    return {name: opt.check(f"{where}.{name}", given[name]) if name in given else opt.default
            for name, opt in declared.items()}
