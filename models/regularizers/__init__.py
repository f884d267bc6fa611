"""Registry of latent regularizers: name -> class (SPEC section 2).

Adding a regularizer = one new module implementing models.regularizers.base.Regularizer (its options declared
in its class, models/regularizers/options.py) + one line below. Nothing else: config validation, the RAE,
training, a sweep's weights, families and `rae.regularizer_options.<name>.<option>` parameters, reports and
figures all read this registry. Entries are 'module:Class' strings imported on first use, so importing this
package (e.g. to validate a config or print CLI help) does not import torch.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from models.regularizers.base import Regularizer

# Order matters only for latent-changing regularizers: the RAE applies bottlenecks in this order (KL, then VQ).
REGISTRY: dict[str, str] = {
    "kl": "models.regularizers.kl:KL",
    "vq": "models.regularizers.vq:VQ",
    "classification": "models.regularizers.classification:Classification",
    "prototype": "models.regularizers.prototype:Prototype",
    "simclr": "models.regularizers.simclr:SimCLR",
    "barlow": "models.regularizers.barlow:Barlow",
}


def __getattr__(attr: str):
    # NAMES, the registered names in registry order, is read from REGISTRY on every access, so that an entry added
    # at run time (a test, a plugin) is seen by every reader: write `regularizers.NAMES`, not a copy made at import.
    if attr == "NAMES":
        return tuple(REGISTRY)
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


if TYPE_CHECKING:
    NAMES: tuple[str, ...]


def get(name: str) -> type[Regularizer]:
    """The regularizer class registered as `name`; ValueError naming it if unknown."""
    if name not in REGISTRY:
        raise ValueError(f"unknown regularizer {name!r}; known: {', '.join(REGISTRY)} "
                         "(no regularizer = an empty weights mapping)")
    module, cls = REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), cls)
