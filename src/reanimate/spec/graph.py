"""The step DAG: which steps feed which, topological order and cycle detection."""

from __future__ import annotations

import heapq

from reanimate.spec.models import Spec


def dependencies(spec: Spec) -> dict[str, list[str]]:
    """Step name -> names of the steps whose outputs it reads (in declaration order, unique)."""
    return {name: [d for d in step.upstream() if d in spec.steps]
            for name, step in spec.steps.items()}


def find_cycle(deps: dict[str, list[str]]) -> list[str] | None:
    """A list of step names forming a cycle (first == last), or None.

    Iterative depth-first search (a chain of thousands of steps must not exhaust Python's
    recursion limit), in declaration order, so the cycle reported is the one a reader meets
    first; O(steps + dependencies).
    """
    state: dict[str, int] = {}  # 1 = on the path, 2 = done
    for root in deps:
        if root in state:
            continue
        path: list[str] = [root]
        where: dict[str, int] = {root: 0}  # name -> its index on the path
        todo = [iter(deps.get(root, ()))]
        state[root] = 1
        while todo:
            dep = next(todo[-1], None)
            if dep is None:  # every dependency of path[-1] explored
                todo.pop()
                done = path.pop()
                del where[done]
                state[done] = 2
                continue
            if state.get(dep) == 1:
                return path[where[dep]:] + [dep]
            if dep not in state:
                state[dep] = 1
                where[dep] = len(path)
                path.append(dep)
                todo.append(iter(deps.get(dep, ())))
    return None


def topological_order(deps: dict[str, list[str]]) -> list[str]:
    """Declaration order, moved only as far as dependencies require (stable, deterministic).

    At each place, the first step in declaration order whose dependencies are all placed
    (Kahn's algorithm with a heap on declaration index): O((steps + dependencies) log steps).
    """
    index = {name: i for i, name in enumerate(deps)}
    waiting = {name: len({d for d in ds if d in index}) for name, ds in deps.items()}
    users: dict[str, list[str]] = {name: [] for name in deps}
    for name, ds in deps.items():
        for dep in {d for d in ds if d in index}:
            users[dep].append(name)
    ready = [index[name] for name, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    names = list(deps)
    order: list[str] = []
    while ready:
        name = names[heapq.heappop(ready)]
        order.append(name)
        for user in users[name]:
            waiting[user] -= 1
            if waiting[user] == 0:
                heapq.heappush(ready, index[user])
    if len(order) < len(deps):
        raise ValueError("cycle in step graph")
    return order


def downstream(deps: dict[str, list[str]], roots: set[str]) -> set[str]:
    """`roots` and every step that depends on them, directly or not (O(steps + deps))."""
    users: dict[str, list[str]] = {}
    for name, ds in deps.items():
        for dep in ds:
            users.setdefault(dep, []).append(name)
    result = set(roots)
    todo = list(roots)
    while todo:
        for user in users.get(todo.pop(), ()):
            if user not in result:
                result.add(user)
                todo.append(user)
    return result
