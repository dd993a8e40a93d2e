"""Grid files as read: the YAML with the line of every key, and the checks of its values.

Every check raises a one-line :class:`~crossl.errors.CrosslError` naming the file, the line and
the key (:meth:`GridFile.fail`). No torch here.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from crossl.errors import CrosslError

SHIPPED = "crossl.bench.grids"


class GridFile:
    """A grid's YAML and the line of every key, for errors that point at the offending line."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.text = text
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
            self.data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark is not None else ""
            raise CrosslError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', None) or exc}); fix the file") \
                from exc
        if not isinstance(self.data, dict):
            raise CrosslError(f"{path}: a grid file is a YAML mapping (name, datasets, methods, ...); see the README")
        self.lines: dict[tuple[Any, ...], int] = {}
        self._index(root, ())

    def _index(self, node: Any, path: tuple[Any, ...]) -> None:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                self.lines[path + (key.value,)] = key.start_mark.line + 1
                self._index(value, (*path, key.value))
                self.lines[path + (key.value,)] = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._index(item, (*path, i))

    def fail(self, path: Sequence[Any], problem: str) -> CrosslError:
        """An error naming the file, the line of ``path`` (or of its nearest parent) and the key."""
        path = tuple(path)
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                line = self.lines[path[:end]]
                break
        key = ".".join(str(p) for p in path) or "the grid"
        return CrosslError(f"{self.path} line {line}: {key}: {problem}")


def read_grid_file(grid: str | Path) -> GridFile:
    """A grid file by path, or a grid shipped with the package by name (``crossl bench --grids``)."""
    path = Path(grid)
    if not path.is_file() and path.suffix == "" and str(grid) in shipped_grids():
        text = resources.files(SHIPPED).joinpath(f"{grid}.yaml").read_text(encoding="utf-8")
        return GridFile(Path(f"{grid}.yaml (shipped)"), text)
    try:
        return GridFile(path, path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CrosslError(f"no grid file {grid}; give a path or one of the shipped grids {shipped_grids()}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise CrosslError(f"cannot read the grid file {grid} ({type(exc).__name__}); check the path") from exc


def shipped_grids() -> list[str]:
    return sorted(p.name.removesuffix(".yaml") for p in resources.files(SHIPPED).iterdir() if p.name.endswith(".yaml"))


# ---------------------------------------------------------------- values
def check_list(g: GridFile, path: tuple[Any, ...], value: Any, kind: type | tuple[type, ...], what: str) -> list[Any]:
    if kind is not list and isinstance(value, kind) and not isinstance(value, bool):
        value = [value]
    if isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, list):
        raise g.fail(path, f"must be a list of {what}, got {value!r}")
    if not value:
        raise g.fail(path, f"must not be empty: give at least one {what.rstrip('s')}")
    for i, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, kind):
            raise g.fail((*path, i), f"must be {what}, got {v!r}")
    if len(set(map(repr, value))) != len(value):
        raise g.fail(path, f"lists a value twice: {value}")
    return value


def check_seeds(g: GridFile, path: tuple[Any, ...], value: Any) -> tuple[int, ...]:
    seeds = check_list(g, path, value, int, "whole-number seeds")
    if any(s < 0 for s in seeds):
        raise g.fail(path, f"seeds must be zero or positive, got {seeds}")
    return tuple(seeds)


def check_fractions(g: GridFile, path: tuple[Any, ...], value: Any) -> tuple[float, ...]:
    fractions = [float(f) for f in check_list(g, path, value, (int, float), "label fractions")]
    bad = [f for f in fractions if not 0.0 < f <= 1.0]
    if bad:
        raise g.fail(path, f"label fractions must lie in (0, 1], got {bad}; use e.g. 0.01 for 1%")
    return tuple(fractions)


def check_protocols(g: GridFile, path: tuple[Any, ...], value: Any, allowed: Sequence[str]) -> tuple[str, ...]:
    protocols = check_list(g, path, value, str, "protocol names")
    for i, p in enumerate(protocols):
        if p not in allowed:
            raise g.fail((*path, i), f"unknown protocol '{p}'; use one of {list(allowed)}")
    return tuple(protocols)


def check_keys(g: GridFile, path: tuple[Any, ...], value: Any, allowed: set[str], what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise g.fail(path, f"{what} must be a mapping, got {value!r}")
    for key in value:
        if key not in allowed:
            raise g.fail((*path, key), f"unknown key in {what}; use {sorted(allowed)}")
    return value
