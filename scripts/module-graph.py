#!/usr/bin/env python3
"""Module dependencies inside one crate: import cycles and layer rules.

Reads every `.rs` file under a crate's `src/`, resolves its `crate::…`, `super::…` and
`self::…` paths (in `use` items and in expressions) to the longest module that exists,
and builds the graph "module A names module B". Then it prints:

- every import cycle (strongly connected component of more than one module);
- every edge from a lower layer into a higher one, for the layers given with --layer
  (first = highest). A module belongs to the first layer with a prefix that matches it.

Exit status 1 when a cycle spans two layers or a lower layer names a higher one.

    python3 scripts/module-graph.py crates/manager \\
        --layer http=app,routes,auth,session,error,openapi,state,server \\
        --layer background=tasks,health,refresh,cluster \\
        --layer service=service,import,views,metrics,config,validate,wopan_health

(Modules of a higher layer may name lower ones; a module may name its own layer.) A
composition root such as `lib` or `server` naturally names every layer: list it in the
highest one.
"""
import argparse
import os
import re
import sys

PATH = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
USE_GROUP = re.compile(r"\buse\s+(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{([^;]*)\};", re.S)


def modules(src):
    mods = {}
    for root, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(root, f)
            rel = os.path.relpath(path, src)[:-3].split(os.sep)
            if rel[-1] == "mod":
                rel = rel[:-1]
            if rel in (["lib"], ["main"]):
                name = ()
            else:
                name = tuple(rel)
            mods[name] = path
    return mods


def strip_comments(text):
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    return text


def resolve(mod, head, rest, known):
    if head == "crate":
        base = []
    elif head == "super":
        base = list(mod[:-1])
    else:
        base = list(mod)
    parts = base + [p for p in rest.split("::") if p]
    while parts and parts[0] == "super":
        parts = parts[1:]
    best = ()
    for i in range(1, len(parts) + 1):
        if tuple(parts[:i]) in known:
            best = tuple(parts[:i])
    return best


def edges(mods):
    known = set(mods)
    out = {m: set() for m in mods}
    for mod, path in mods.items():
        text = strip_comments(open(path, encoding="utf-8").read())
        # `super::` in a file's inline `mod tests` means the file itself; good enough.
        for m in USE_GROUP.finditer(text):
            head, prefix, group = m.group(1), m.group(2), m.group(3)
            for item in re.split(r"[,{}\s]+", group):
                item = item.split(" as ")[0]
                if item and item != "self" and re.match(r"[A-Za-z_]", item):
                    t = resolve(mod, head, prefix + "::" + item, known)
                    if t != mod and t != ():
                        out[mod].add(t)
        for m in PATH.finditer(text):
            t = resolve(mod, m.group(1), m.group(2), known)
            if t != mod and t != () and not (len(t) < len(mod) and mod[: len(t)] == t):
                out[mod].add(t)
    return out


def sccs(graph):
    index, low, stack, on, result, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
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
            result.append(comp)

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return [c for c in result if len(c) > 1]


def name(m):
    return "::".join(m) or "crate"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("crate")
    ap.add_argument("--layer", action="append", default=[], help="NAME=prefix,prefix,… (highest first)")
    args = ap.parse_args()
    mods = modules(os.path.join(args.crate, "src"))
    graph = edges(mods)
    layers = []
    for spec in args.layer:
        lname, prefixes = spec.split("=", 1)
        layers.append((lname, [tuple(p.split("::")) for p in prefixes.split(",") if p]))

    def layer_of(m):
        for i, (_, prefixes) in enumerate(layers):
            if any(m[: len(p)] == p for p in prefixes):
                return i
        return None

    bad = 0
    cycles = sccs(graph)
    print(f"{len(mods)} modules, {sum(len(v) for v in graph.values())} edges, {len(cycles)} cycle(s)")
    for c in cycles:
        spans = {layer_of(m) for m in c}
        mark = " (spans layers!)" if len(spans - {None}) > 1 else ""
        bad += bool(mark)
        print(f"cycle of {len(c)}{mark}: " + ", ".join(sorted(name(m) for m in c)))
    for a, targets in sorted(graph.items()):
        la = layer_of(a)
        for b in sorted(targets):
            lb = layer_of(b)
            if la is not None and lb is not None and lb < la:
                bad += 1
                print(f"layer violation: {name(a)} ({layers[la][0]}) names {name(b)} ({layers[lb][0]})")
    unplaced = sorted(name(m) for m in mods if m and layer_of(m) is None) if layers else []
    if unplaced:
        print("not in any layer: " + ", ".join(unplaced))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
