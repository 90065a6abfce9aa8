"""Load action files: `${VAR}` substitution, YAML parsing with positions, pydantic validation whose errors
name the file, line, column and YAML path."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .model import ActionFile

_SCALAR_BRANCHES = {"string_type", "int_type", "float_type", "bool_type", "int_parsing", "float_parsing",
                    "bool_parsing"}
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class ConfigProblem:
    """One error or warning about a file, located as precisely as we can."""

    file: str
    line: int | None
    column: int | None
    path: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        at = f" at {self.path}" if self.path else ""
        return f"{where}: {self.severity}{at}: {self.message}"


class ConfigError(Exception):
    """Raised when files do not load; carries every problem found."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


_QUOTED = re.compile(r"'[^']{2,}'|\"[^\"]{2,}\"")


def yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's problem without quoted text: the file's values may be secrets (`${VAR}` already replaced), and
    its messages quote them (`found undefined alias '…'`)."""
    return _QUOTED.sub("'…'", str(getattr(exc, "problem", None) or "not valid YAML"))


def substitute(text: str, env: Mapping[str, str] | None = None) -> str:
    """Replace `${VAR}` (and `${VAR:-default}`) from the environment; an unset variable without default is ""."""
    environ = os.environ if env is None else env
    return _VAR.sub(lambda m: environ.get(m.group(1), m.group(2) if m.group(2) is not None else ""), text)


def _positions(node: yaml.Node, path: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], tuple[int, int]]:
    """Every YAML path → (line, column), 1-based, from the composed node tree."""
    out = {path: (node.start_mark.line + 1, node.start_mark.column + 1)}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            out.update(_positions(value, (*path, key.value)))
            out[(*path, key.value, "<key>")] = (key.start_mark.line + 1, key.start_mark.column + 1)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            out.update(_positions(item, (*path, index)))
    return out


def _locate(positions: dict[tuple[Any, ...], tuple[int, int]], loc: tuple[Any, ...]) -> tuple[int | None, int | None, str]:
    """The deepest YAML position along a pydantic error location (which may include union branch names)."""
    keys = [k for k in loc if isinstance(k, int) or not str(k).startswith(("function-", "tagged-union"))]
    best: tuple[int, int] | None = None
    path: list[Any] = []
    candidate: list[Any] = []
    for key in keys:
        candidate = [*candidate, key]
        if tuple(candidate) in positions:
            path = list(candidate)
            best = positions[tuple(candidate)]
        else:
            candidate = candidate[:-1]
    text = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in path).replace(".[", "[")
    return (best[0], best[1], text) if best else (None, None, text)


def load_text(text: str, file: str, env: Mapping[str, str] | None = None) -> ActionFile:
    """Parse and validate one action file's text; ConfigError with located problems."""
    unset = _unset_write_key_variables(text, file, env)
    text = substitute(text, env)
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError([ConfigProblem(file, mark.line + 1 if mark else None, mark.column + 1 if mark else None,
                                         "", f"not valid YAML: {yaml_problem(exc)}")]) from None
    if node is None or not isinstance(data, dict):
        raise ConfigError([ConfigProblem(file, 1, 1, "", "an action file is a mapping with `source` and `actions`")])
    positions = _positions(node)
    try:
        loaded = ActionFile.model_validate(data)
    except ValidationError as exc:
        problems = []
        seen: set[tuple[Any, ...]] = set()
        for error in exc.errors():
            if error["type"] in _SCALAR_BRANCHES and isinstance(error.get("input"), dict):
                continue  # a mapping was given: the scalar branches of a `str | FieldSpec` union do not apply
            line, column, path = _locate(positions, tuple(error["loc"]))
            key = (line, column, path, error["msg"])
            if key in seen:
                continue
            seen.add(key)
            problems.append(ConfigProblem(file, line, column, path, error["msg"].removeprefix("Value error, ")))
        raise ConfigError(problems + unset) from None
    owned = []
    for i, name in loaded.owned_by_salesforce():
        line, column = positions.get(("actions", i, "fields", name, "<key>"), (None, None))
        owned.append(ConfigProblem(file, line, column, f"actions[{i}].fields.{name}",
                                   f"{name} has direction from_salesforce in sync_back (Salesforce owns it): the "
                                   "push direction never writes it"))
    if unset or owned:
        raise ConfigError(unset + owned)
    return loaded


def _unset_write_key_variables(text: str, file: str, env: Mapping[str, str] | None) -> list[ConfigProblem]:
    """An error per write key that names an unset `${VAR}` (without a default): substituted as "", it would
    leave the source without that key. The message names the variable, never a value."""
    environ = os.environ if env is None else env
    unset = {m.group(1) for m in _VAR.finditer(text) if m.group(1) not in environ and m.group(2) is None}
    if not unset:
        return []
    marked = _VAR.sub(lambda m: f"__UNSET_{m.group(1)}__" if m.group(1) in unset else m.group(0), text)
    try:
        node = yaml.compose(marked)
        data = yaml.safe_load(marked)
    except yaml.YAMLError:
        return []  # the real parse reports it
    keys = data.get("write_keys") if isinstance(data, dict) else None
    if node is None or not isinstance(keys, list):
        return []
    positions = _positions(node)
    problems = []
    for index, key in enumerate(keys):
        names = sorted(name for name in unset if f"__UNSET_{name}__" in str(key))
        if names:
            line, column = positions.get(("write_keys", index), (None, None))
            problems.append(ConfigProblem(file, line, column, f"write_keys[{index}]",
                                          f"environment variable {', '.join(names)} is not set: this write key "
                                          "would be empty"))
    return problems


def shared_write_keys(sources: Mapping[str, tuple[ActionFile, Path]],
                      env: Mapping[str, str] | None = None) -> list[ConfigProblem]:
    """An error for every write key that a source shares with an earlier one: ingest would route all its
    events to one of them. Located at the later file's key; the key itself is never printed."""
    owner: dict[str, str] = {}
    problems = []
    for name, (source, path) in sources.items():
        positions: dict[tuple[Any, ...], tuple[int, int]] | None = None
        for index, key in enumerate(source.write_keys):
            first = owner.setdefault(key, name) if key else name
            if first == name:
                continue
            if positions is None:
                try:
                    node = yaml.compose(substitute(path.read_text(), env))
                    positions = _positions(node) if node is not None else {}
                except (OSError, yaml.YAMLError):
                    positions = {}
            line, column = positions.get(("write_keys", index), (None, None))
            problems.append(ConfigProblem(str(path), line, column, f"write_keys[{index}]",
                                          f"source {name!r} shares this write key with source {first!r}: "
                                          "each write key must belong to one source"))
    return problems


def load_file(path: Path, env: Mapping[str, str] | None = None) -> ActionFile:
    """One action file; an unreadable file is a located problem like a bad key."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError([ConfigProblem(str(path), None, None, "", f"cannot be read: {exc.strerror}")]) from None
    return load_text(text, str(path), env)


def load_dir(folder: Path, env: Mapping[str, str] | None = None) -> dict[str, ActionFile]:
    """Every `*.yaml` / `*.yml` in a folder, by source; all problems of all files at once."""
    return {name: loaded for name, (loaded, _) in load_sources(folder, env).items()}


def load_sources(folder: Path, env: Mapping[str, str] | None = None) -> dict[str, tuple[ActionFile, Path]]:
    """`load_dir`, keeping the file each source came from (for located problems)."""
    sources: dict[str, tuple[ActionFile, Path]] = {}
    problems: list[ConfigProblem] = []
    files = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
    if not files:
        raise ConfigError([ConfigProblem(str(folder), None, None, "", "no action files (*.yaml) in this folder")])
    for path in files:
        try:
            loaded = load_file(path, env)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        if loaded.source in sources:
            problems.append(ConfigProblem(str(path), 1, 1, "source", f"source {loaded.source!r} is defined twice"))
        sources[loaded.source] = (loaded, path)
    problems.extend(shared_write_keys(sources, env))
    if problems:
        raise ConfigError(problems)
    return sources
