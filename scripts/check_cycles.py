"""Fail when any two toneflow modules import each other, directly or through others.

import-linter's layers contract (pyproject.toml) keeps packages in order; this keeps the modules
inside a package free of circles too, counting imports inside functions, which hide a circle from
Python but not from a reader. Run by ``make lint``.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative: the groups of modules that reach each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    groups: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return groups


def main() -> int:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = config["tool"]["importlinter"]["root_packages"]
    sys.path.insert(0, str(ROOT))
    imports = grimp.build_graph(*packages, cache_dir=None)
    graph = {m: set(imports.find_modules_directly_imported_by(m)) for m in imports.modules}
    # A package's __init__ re-exporting its own modules is not a circle a reader trips over.
    graph = {m: {d for d in deps if not m.startswith(d + ".")} for m, deps in graph.items()}
    circles = strongly_connected(graph)
    for group in circles:
        print("import circle: " + " <-> ".join(group))
    if circles:
        print(f"{len(circles)} import circle(s): move what both sides need into a module they can both import")
        return 1
    print(f"no import circles among {len(graph)} modules")
    return 0


if __name__ == "__main__":
    sys.exit(main())
