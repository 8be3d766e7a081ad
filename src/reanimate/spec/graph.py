"""The step DAG: which steps feed which, topological order and cycle detection."""

from __future__ import annotations

from reanimate.spec.models import Spec


def dependencies(spec: Spec) -> dict[str, list[str]]:
    """Step name -> names of the steps whose outputs it reads (in declaration order, unique)."""
    return {name: [d for d in step.upstream() if d in spec.steps]
            for name, step in spec.steps.items()}


def find_cycle(deps: dict[str, list[str]]) -> list[str] | None:
    """A list of step names forming a cycle (first == last), or None."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in deps.get(node, []):
            if state.get(dep) == 1:
                return stack[stack.index(dep) :] + [dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in deps:
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def topological_order(deps: dict[str, list[str]]) -> list[str]:
    """Declaration order, moved only as far as dependencies require (stable, deterministic)."""
    order: list[str] = []
    placed: set[str] = set()
    while len(order) < len(deps):
        for name in deps:
            if name not in placed and all(d in placed for d in deps[name]):
                order.append(name)
                placed.add(name)
                break
        else:
            raise ValueError("cycle in step graph")
    return order


def downstream(deps: dict[str, list[str]], roots: set[str]) -> set[str]:
    """`roots` and every step that depends on them, directly or not."""
    result = set(roots)
    changed = True
    while changed:
        changed = False
        for name, ds in deps.items():
            if name not in result and any(d in result for d in ds):
                result.add(name)
                changed = True
    return result
