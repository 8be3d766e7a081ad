"""The step DAG: which steps feed which, topological order and cycle detection."""

from __future__ import annotations

from reanimate.spec.models import Spec


def parse_step_reference(ref: str) -> tuple[str, str] | None:
    """`steps.STEP.OUTPUT` -> (STEP, OUTPUT); anything else -> None."""
    if not ref.startswith("steps."):
        return None
    parts = ref.split(".")
    if len(parts) != 3:
        return ("", "")  # malformed: reported by checks
    return parts[1], parts[2]


def references(value: str | list[str]) -> list[str]:
    return value if isinstance(value, list) else [value]


def dependencies(spec: Spec) -> dict[str, list[str]]:
    """Step name -> names of the steps whose outputs it reads (in declaration order, unique)."""
    deps: dict[str, list[str]] = {}
    for name, step in spec.steps.items():
        found: list[str] = []
        for value in step.inputs.values():
            for ref in references(value):
                parsed = parse_step_reference(ref)
                if parsed and parsed[0] in spec.steps and parsed[0] not in found:
                    found.append(parsed[0])
        deps[name] = found
    return deps


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
