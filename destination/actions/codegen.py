"""Python source built from validated actions: the pieces every generated function shares — constants,
reads of event paths, trigger expressions — and the one place such source is compiled.

Nothing a user wrote is spliced into source as text: plain strings and small integers go in as `repr()`
literals (a repr is always a literal that evaluates to the same value), every other value is a name bound
in the function's namespace. Names of locals are ours (`v`, `s0`, `t3`), never taken from the config.
"""

from __future__ import annotations

import dataclasses
import itertools
import linecache
from collections.abc import Callable
from typing import Any, TypeVar

from .paths import MISSING, steps
from .trigger import AllOf, AnyOf, Compare, Contains, Exists, In, Not, holds_contains, holds_order, same

T = TypeVar("T")
_SMALL_INT = 10 ** 15
_BUILT = itertools.count(1)
_EMPTY: dict[str, Any] = {}  # the scope read through when a path's first step is not an object; never written


class Source:
    """One generated module: its lines, the namespace its constants live in, and fresh local names."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.names: dict[str, Any] = {"MISSING": MISSING, "_EMPTY": _EMPTY, "_same": same,
                                      "_holds_contains": holds_contains, "_holds_order": holds_order}
        self._held: dict[int, str] = {}
        self._count = 0

    def const(self, value: Any) -> str:
        """An expression for `value`: a literal for text, small integers, booleans and None, else a name."""
        if value is None or type(value) is bool or type(value) is str:
            return repr(value)
        if type(value) is int and -_SMALL_INT < value < _SMALL_INT:
            return repr(value)
        name = self._held.get(id(value))
        if name is None:
            name = self._held[id(value)] = self.fresh("_k")
            self.names[name] = value
        return name

    def bind(self, prefix: str, value: Any) -> str:
        """A new namespace name for `value` (a helper function, a class)."""
        name = self.fresh(prefix)
        self.names[name] = value
        return name

    def fresh(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}{self._count}"

    def add(self, indent: int, *lines: str) -> None:
        self.lines.extend("    " * indent + line for line in lines)

    def build(self, name: str, filename: str) -> Callable[..., Any]:
        """Compile the lines and return the function called `name` they define."""
        text = "\n".join(self.lines) + "\n"
        namespace = dict(self.names)
        filename = f"{filename[:-1]} #{next(_BUILT)}>"
        linecache.cache[filename] = (len(text), None, text.splitlines(keepends=True), filename)  # for tracebacks
        exec(compile(text, filename, "exec"), namespace)
        function: Callable[..., Any] = namespace[name]
        return function


class Reads:
    """Reads of event paths inside one generated function. Each path's first object (`traits` of
    `traits.email`) is read once, at the top of the function (`prelude`), and replaced by an empty object
    when it is not one, so a later read is one `.get`; reads are pure, so reading early changes nothing."""

    def __init__(self, src: Source, body: str = "body") -> None:
        self.src = src
        self.body = body
        self.prelude: list[str] = []
        self._scopes: dict[str, str] = {}
        self._values: dict[str, str] = {}

    def _scope(self, key: str) -> str:
        name = self._scopes.get(key)
        if name is None:
            name = self._scopes[key] = self.src.fresh("s")
            self.prelude += [f"{name} = {self.body}.get({self.src.const(key)})",
                             f"if not isinstance({name}, dict):", f"    {name} = _EMPTY"]
        return name

    def read(self, path: str, target: str) -> list[str]:
        """Lines that set `target` to the value at `path` (MISSING when a step is absent), exactly as
        paths.getter reads it; the body is known to be an object."""
        keys = steps(path)
        if not keys:
            return [f"{target} = {self.body}"]
        if isinstance(keys[0], str) and len(keys) == 1:
            return [f"{target} = {self.body}.get({self.src.const(keys[0])}, MISSING)"]
        if isinstance(keys[0], str) and isinstance(keys[1], str):
            lines = [f"{target} = {self._scope(keys[0])}.get({self.src.const(keys[1])}, MISSING)"]
            rest = keys[2:]
        else:
            lines = [f"{target} = {self.body}"]
            rest = keys
        for key in rest:
            if isinstance(key, int):
                index = self.src.const(key)
                lines.append(f"{target} = {target}[{index}] if isinstance({target}, list) and {index} < len({target}) "
                             f"else MISSING")
            else:
                lines.append(f"{target} = {target}.get({self.src.const(key)}, MISSING) if isinstance({target}, dict) "
                             f"else MISSING")
        return lines


    def value(self, path: str, lines: list[str]) -> str:
        """A local holding the value at `path`, read once per function (its lines appended to `lines`)."""
        name = self._values.get(path)
        if name is None:
            name = self._values[path] = self.src.fresh("t")
            lines += self.read(path, name)
        return name


def is_blank(value: str) -> str:
    """The expression values.is_blank(value) is, for a local name."""
    return f"({value} is MISSING or {value} is None or (isinstance({value}, str) and {value}.strip() == ''))"


def trigger(tree: Any, src: Source, reads: Reads, lines: list[str]) -> str:
    """An expression for a parsed trigger (trigger.compile_tree's semantics); the reads it needs are
    appended to `lines` (read once per path, before the expression, since reads are pure)."""
    if isinstance(tree, (AllOf, AnyOf)):
        joiner = " and " if isinstance(tree, AllOf) else " or "
        return "(" + joiner.join(trigger(t, src, reads, lines) for t in tree.items) + ")"
    if isinstance(tree, Not):
        return f"(not {trigger(tree.item, src, reads, lines)})"
    value = reads.value(tree.path, lines)
    if isinstance(tree, Exists):
        held = f"({value} is not MISSING and {value} is not None and {value} != '')"
        return f"(not {held})" if tree.negate else held
    if isinstance(tree, In):
        any_of = " or ".join(_equal(value, v, src) for v in tree.values)
        held = f"({value} is not MISSING and ({any_of}))"
        return f"(not {held})" if tree.negate else held
    if isinstance(tree, Contains):
        return f"_holds_contains({value}, {src.const(tree.value)})"
    assert isinstance(tree, Compare)
    if tree.op in ("=", "!="):
        missing = tree.op == "!=" and tree.value is not None
        test = _equal(value, tree.value, src)
        held = test if tree.op == "=" else f"(not {test})"
        return f"({missing!r} if {value} is MISSING else {held})"
    return f"_holds_order({tree.op!r}, {value}, {src.const(tree.value)})"


def _equal(value: str, right: Any, src: Source) -> str:
    """trigger.same(value, right) as a bool expression; text against text is compared inline."""
    if type(right) is str:
        literal = src.const(right)
        return f"({value} == {literal} if type({value}) is str else _same({value}, {literal}))"
    return f"_same({value}, {src.const(right)})"


def construct(src: Source, cls: type, args: dict[str, str]) -> str:
    """A call building `cls` from expressions: positional for the leading dataclass fields (the cheapest
    call), by keyword for the rest and for classes that are not dataclasses."""
    name = src.const(cls)
    fields = [f for f in dataclasses.fields(cls) if f.init] if dataclasses.is_dataclass(cls) else []
    positional: list[str] = []
    for field in fields:
        if field.name not in args or field.kw_only is True:
            break
        positional.append(args[field.name])
    given = {f.name for f in fields[:len(positional)]}
    keywords = [f"{k}={v}" for k, v in args.items() if k not in given]
    return f"{name}({', '.join(positional + keywords)})"


def assign(src: Source, target: str, cls: type, args: dict[str, str]) -> list[str]:
    """Lines setting `target` to a new `cls` built from expressions. A slotted dataclass given every field
    is filled slot by slot (what its __init__ does, at half the cost: a frozen one's __init__ goes through
    object.__setattr__ per field); any other class is called. `args` may also set a slotted dataclass's
    non-init fields (caches known when the source is built); the others get their defaults, as __init__
    gives them."""
    fields = [f for f in dataclasses.fields(cls) if f.init] if dataclasses.is_dataclass(cls) else []
    slots = [type(_slot(cls, f.name)).__name__ == "member_descriptor" for f in fields]
    rest = [f for f in dataclasses.fields(cls) if not f.init] if fields else []  # what __init__ sets besides
    if (not fields or not all(slots) or {f.name for f in fields} != set(args) - {f.name for f in rest}
            or hasattr(cls, "__post_init__") or cls.__new__ is not object.__new__
            or any(f.name not in args and f.default is dataclasses.MISSING for f in rest)):
        if set(args) - {f.name for f in fields}:
            raise ValueError(f"{cls.__name__} is not built slot by slot: only its init fields can be given")
        return [f"{target} = {construct(src, cls, args)}"]
    made = src.fresh("o")
    lines = [f"{made} = _new({src.const(cls)})"]
    src.names["_new"] = object.__new__
    for field in [*fields, *rest]:
        setter = src.bind("_set", _slot(cls, field.name).__set__)
        lines.append(f"{setter}({made}, {args[field.name] if field.name in args else src.const(field.default)})")
    return [*lines, f"{target} = {made}"]


def _slot(cls: type, name: str) -> Any:
    """The class attribute `name` of `cls` or the first base that has one (a slot's descriptor lives on the
    class that declared it), or None."""
    return next((c.__dict__[name] for c in cls.__mro__ if name in c.__dict__), None)


def maker(cls: type[T]) -> Callable[..., T]:
    """A function building the dataclass `cls` from its init fields, given positionally in their order, as
    `assign` builds it: slot by slot for a slotted one (a third of a frozen one's __init__)."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls.__name__} is not a dataclass")
    fields = [f for f in dataclasses.fields(cls) if f.init]
    names = [f"a{index}" for index in range(len(fields))]  # ours: a field name could be a namespace name
    src = Source()
    src.add(0, f"def make({', '.join(names)}):")
    src.add(1, *assign(src, "made", cls, {f.name: name for f, name in zip(fields, names, strict=True)}),
            "return made")
    made: Callable[..., T] = src.build("make", f"<make {cls.__name__}>")
    return made
