"""Where a py-spy profile's samples went, by module (`BENCH_PYSPY=profile.txt` records one of the destination
in a delivery benchmark, in py-spy's raw format: one `frame;frame;…;leaf count` line per distinct stack).

    python -m bench.pyspy_summary profile.txt [--top 25]

Three views, each in percent of the samples that are not start-up (stacks inside an import are left out):
- self: the module of the innermost frame (where the CPU was when sampled);
- charged: the innermost frame in *this project's* code (destination/, salesforce_emulator/), so time
  spent in httpx, ssl, sqlite3 or aiokafka counts against the module of ours that called it, and frames
  with none of ours (the event loop itself, threads of libraries) stay with their own module;
- inclusive: every module of ours on the stack (a sample counts once per module; sums exceed 100);
- functions: as charged, by function of ours and the module the time was spent in (`--top` lines).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
OURS = ("destination/", "salesforce_emulator/", "bench/")
STARTUP = ("<frozen importlib._bootstrap>",)  # a stack with a frame in these files is start-up
STARTUP_FUNCTIONS = ("_settle_garbage_collector",)  # run's one gc.collect() after start-up


@dataclass(frozen=True)
class Stack:
    frames: tuple[str, ...]  # file of each frame, outermost first
    functions: tuple[str, ...]
    count: int


def parse(lines: Iterable[str]) -> list[Stack]:
    """py-spy raw lines as stacks (a line that is not `stack count` is skipped)."""
    out = []
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        files, funcs = [], []
        for frame in stack.split(";"):
            m = _FRAME.match(frame)
            files.append(m.group("file") if m else frame)
            funcs.append(m.group("func") if m else frame)
        out.append(Stack(tuple(files), tuple(funcs), int(count)))
    return out


def module_of(file: str) -> str:
    """A file as a module name: ours by path (destination/salesforce/client.py), others by top package."""
    for root in OURS:
        at = file.find(root)
        if at >= 0:
            return file[at:]
    if file.startswith("<"):
        return file
    parts = Path(file).parts
    if "site-packages" in parts:
        parts = parts[parts.index("site-packages") + 1:]
    return parts[0].removesuffix(".py") if parts else file


def is_ours(module: str) -> bool:
    return module.startswith(OURS)


def summarise(stacks: list[Stack]) -> dict[str, Counter[str]]:
    """Sample counts by module in the three views; 'startup' and 'total' in the fourth counter."""
    self_time: Counter[str] = Counter()
    charged: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    for stack in stacks:
        if any(f.startswith(STARTUP) for f in stack.frames) or any(f in STARTUP_FUNCTIONS for f in stack.functions):
            totals["startup"] += stack.count
            continue
        totals["total"] += stack.count
        modules = [module_of(f) for f in stack.frames]
        self_time[modules[-1]] += stack.count
        ours = [i for i, m in enumerate(modules) if is_ours(m)]
        charged[modules[ours[-1]] if ours else modules[-1]] += stack.count
        for m in {modules[i] for i in ours}:
            inclusive[m] += stack.count
        if ours:
            where = modules[-1] if ours[-1] != len(modules) - 1 else "itself"
            functions[f"{modules[ours[-1]]} {stack.functions[ours[-1]]} → {where}"] += stack.count
        else:
            functions[f"(none of ours) {modules[-1]} {stack.functions[-1]}"] += stack.count
    return {"self": self_time, "charged": charged, "inclusive": inclusive, "functions": functions, "totals": totals}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pyspy_summary")
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    views = summarise(parse(args.profile.read_text(errors="replace").splitlines()))
    total = views["totals"]["total"] or 1
    print(f"{total} samples after start-up ({views['totals']['startup']} in imports left out)")
    for name in ("self", "charged", "inclusive", "functions"):
        print(f"\n{name}:")
        for module, count in views[name].most_common(args.top):
            print(f"  {count / total * 100:5.1f}%  {module}")


if __name__ == "__main__":
    main()
