#!/usr/bin/env python3
"""Lists file-level import cycles and upward imports in the workspace's crates.

A file imports another when a `use crate::…`, `use super::…` or `crate::…` path names a module
that the other file defines. Prints each cycle of files (strongly connected component of more
than one file) and of top-level modules per crate, and in the NAS core every import that goes
up its layers (`CORE_LAYERS`); exits 1 if there is any, so CI or a reviewer can run it:
`python3 tools/import-cycles.py`. A child module's `use super::*` in its tests is ignored.
"""
import os
import re
import sys

CRATES = {"pipeline": "pipeline/src", "stages": "stages/src", "core": "stages/core/src"}
# The NAS core's layers, lowest first: a module imports only from its own layer or lower ones.
CORE_LAYERS = ["error", "hashing", "seeds", "device", "stats", "data", "bench", "net", "space", "proxy", "prune"]


def modules(src):
    """Module path (tuple) -> file, for every .rs file under src."""
    out = {}
    for dirpath, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, f), src)[:-3].split(os.sep)
            if rel[-1] in ("mod", "lib", "main"):
                rel = rel[:-1]
            # Test-only modules and binaries import what the code under test imports.
            if rel and rel[0] in ("bin", "test_support"):
                continue
            out[tuple(rel)] = os.path.join(dirpath, f)
    return out


def strip_tests(text):
    """The file without its `#[cfg(test)] mod tests { … }` block (tests may import anything)."""
    m = re.search(r"#\[cfg\(test\)\]\s*mod tests\s*\{", text)
    return text[: m.start()] if m else text


def paths_in(text):
    """Every `crate::a::b` / `super::a` path, with `use x::{a, b::c}` groups expanded."""
    text = re.sub(r"//[^\n]*", "", text)
    found = []
    for m in re.finditer(r"\buse\s+((?:crate|super)(?:::\w+)*)(?:::\{([^;]*)\})?", text):
        base, group = m.group(1), m.group(2)
        if group is None:
            found.append(base)
            continue
        for part in re.split(r",(?![^{]*\})", group):
            part = part.strip().split(" as ")[0].strip()
            head = re.match(r"[\w:]+", part)
            if head:
                found.append(base + "::" + head.group(0))
    found += re.findall(r"(?<![\w:])crate(?:::\w+)+", text)
    return found


def resolve(path, here, mods):
    parts = path.split("::")
    cur = list(here)  # the importing module: `super` is its parent
    if parts[0] == "crate":
        cur = []
        parts = parts[1:]
    while parts and parts[0] == "super":
        cur = cur[:-1]
        parts = parts[1:]
    target = tuple(cur)
    best = target if target in mods else None
    for p in parts:
        target = target + (p,)
        if target in mods:
            best = target
        else:
            break
    return best


def cycles(graph):
    index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return sccs


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    bad = False
    for crate, src in CRATES.items():
        if not os.path.isdir(os.path.join(root, src)):
            continue
        mods = modules(os.path.join(root, src))
        graph = {}
        for mod, path in mods.items():
            text = strip_tests(open(path, encoding="utf-8").read())
            deps = set()
            for p in paths_in(text):
                t = resolve(p, mod, mods)
                # A parent module file naming its own children is structure, not an import.
                if t is not None and t != mod and not (t[: len(mod)] == mod):
                    deps.add(t)
            graph[mod] = deps
        found = cycles(graph)
        for comp in found:
            bad = True
            print(f"{crate}: file cycle: " + " <-> ".join("::".join(c) or "lib" for c in comp))
        # The same graph between top-level modules (folders): `data` must not import `prune`
        # while `prune` imports `data`.
        top = {}
        for mod, deps in graph.items():
            for d in deps:
                if mod[:1] != d[:1] and mod and d:
                    top.setdefault(mod[:1], set()).add(d[:1])
        layered = cycles(top)
        for comp in layered:
            bad = True
            print(f"{crate}: module cycle: " + " <-> ".join("::".join(c) for c in comp))
        upward = []
        if crate == "core":
            rank = {name: i for i, name in enumerate(CORE_LAYERS)}
            for mod, deps in sorted(top.items()):
                for d in sorted(deps):
                    if rank.get(d[0], -1) > rank.get(mod[0], len(rank)):
                        upward.append(f"{mod[0]} -> {d[0]}")
            for u in upward:
                bad = True
                print(f"{crate}: upward import: {u}")
        print(
            f"{crate}: {len(mods)} files, {len(found)} file cycles, {len(layered)} module cycles"
            + (f", {len(upward)} upward imports" if crate == "core" else "")
        )
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
