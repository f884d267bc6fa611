"""YAML for the files people write (training configs, sweep files): PyYAML's safe loader, minus silent overwrites.

YAML says the keys of a mapping are unique, but PyYAML keeps the last of two equal keys without a word: a sweep
file with `prototype:` written twice under `search.regularizers` would search only the second range. StrictLoader
refuses such a file, naming the key path and the lines of both occurrences. Torch-free.

    raw = load_yaml(path.read_text())        # or yaml.load(text, Loader=StrictLoader)
"""
from __future__ import annotations

from typing import Any

import yaml


class DuplicateKeyError(yaml.YAMLError):
    """A mapping holds one key twice; the message starts with the key's dotted path."""


class StrictLoader(yaml.SafeLoader):
    """yaml.SafeLoader that raises DuplicateKeyError instead of keeping the last of two equal keys."""

    def construct_document(self, node: yaml.Node) -> Any:
        _check_unique(node, "")
        return super().construct_document(node)


def load_yaml(text: str) -> Any:
    """Parse YAML text with StrictLoader (yaml.YAMLError, DuplicateKeyError included, on a mistake)."""
    return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - StrictLoader is a SafeLoader


def _check_unique(node: yaml.Node, path: str, seen: set[int] | None = None) -> None:
    seen = set() if seen is None else seen
    if id(node) in seen:  # an alias points back at a node already checked
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key is not None and key != "<<":  # '<<' is a merge key: PyYAML merges, it overwrites nothing
                where = f"{path}.{key}" if path else str(key)
                line = key_node.start_mark.line + 1
                if key in first:
                    raise DuplicateKeyError(f"{where}: key written twice (lines {first[key]} and {line}); YAML "
                                            "would silently keep only the second: remove one of them")
                first[key] = line
                _check_unique(value_node, where, seen)
            else:
                _check_unique(value_node, path, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_unique(item, f"{path}[{i}]", seen)
