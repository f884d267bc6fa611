"""The one exception the data package raises for bad files (kept torch-free so a CLI can import it cheaply)."""
from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """A data file is missing, truncated or malformed. The message names the file and what is wrong."""


def data_error(path: str | Path, problem: str) -> DataError:
    """Build a DataError whose message starts with the offending file: '<path>: <problem>'."""
    return DataError(f"{path}: {problem}")
