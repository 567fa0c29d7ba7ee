"""How far a prompt's run is: a percentage that moves with time, not only with node counts. Pure.

Counting finished nodes alone leaves the bar at one value for as long as the slowest node runs
(a model that loads for 90 s, SharpPredict for minutes): the CLI sat at ~65% for most of a real
job. So each node has a share of the run, weighted by its expected cost, and the running node's
share fills:

- with the time it has been running, ``t / (t + HALF_LIFE_S)``: half its share after 30 s, 90%
  after 4.5 min, never all of it, so a long node keeps the bar moving without reaching the next
  node's share;
- once ComfyUI reports sampler steps (``progress`` value/max), the part filled before the first
  step (a sampler moving its model to the GPU, at most `STEPS_FROM`) stays, the steps fill the
  rest, and between two steps the bar creeps on at the pace of the steps so far (after the first
  step: the wait for it), at most 90% of a step, so a slow step does not freeze it either.

Weights: a node that loads a model file (a string input naming a .safetensors, .ckpt, .pt, ...)
or runs sampler steps (an integer ``steps`` input) costs `HEAVY_WEIGHT`, any other node
`BASE_WEIGHT`. The run never reports more than `RUN_CEILING` percent: 100 is the job's end.
Whoever sends the numbers keeps them from going backwards (progress.py): a step count that starts
below the time estimate holds the bar until it catches up.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BASE_WEIGHT",
    "HALF_LIFE_S",
    "HEAVY_WEIGHT",
    "MODEL_SUFFIXES",
    "RUN_CEILING",
    "STEPS_FROM",
    "RunPlan",
    "StepPace",
    "creep",
    "model_behind",
    "model_file",
    "node_fill",
]

MODEL_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".sft", ".onnx")
BASE_WEIGHT = 1.0
HEAVY_WEIGHT = 3.0
HALF_LIFE_S = 30.0
RUN_CEILING = 99.0
STEPS_FROM = 0.5  # the most of a node's share its time before the first step can take


def model_file(node: Any) -> str | None:
    """The model file a node loads (its first string input naming one), else None."""
    inputs = node.get("inputs") if isinstance(node, Mapping) else None
    if not isinstance(inputs, Mapping):
        return None
    for value in inputs.values():
        if isinstance(value, str) and value.lower().endswith(MODEL_SUFFIXES):
            return value
    return None


def model_behind(workflow: Mapping[str, Any], node_id: str) -> str | None:
    """The model file a node works with: its own, else the nearest one upstream through its links
    (a KSampler's ``model`` comes from the CheckpointLoaderSimple that names the file)."""
    queue, seen = [node_id], {node_id}
    while queue:
        current = workflow.get(queue.pop(0))
        found = model_file(current)
        if found is not None:
            return found
        inputs = current.get("inputs") if isinstance(current, Mapping) else None
        for value in inputs.values() if isinstance(inputs, Mapping) else ():
            if isinstance(value, list) and len(value) == 2 and str(value[0]) not in seen:
                seen.add(str(value[0]))
                queue.append(str(value[0]))
    return None


def _has_steps(node: Any) -> bool:
    inputs = node.get("inputs") if isinstance(node, Mapping) else None
    steps = inputs.get("steps") if isinstance(inputs, Mapping) else None
    return isinstance(steps, int) and not isinstance(steps, bool) and steps > 0


def _weight(node: Any) -> float:
    return HEAVY_WEIGHT if model_file(node) is not None or _has_steps(node) else BASE_WEIGHT


@dataclass(frozen=True)
class RunPlan:
    """Each node's weight in one workflow."""

    weights: Mapping[str, float]

    @classmethod
    def of(cls, workflow: Mapping[str, Any]) -> RunPlan:
        return cls({str(node_id): _weight(node) for node_id, node in workflow.items()})

    @property
    def total(self) -> float:
        return sum(self.weights.values())

    def percent(self, *, done: Collection[str], current: str | None, fill: float = 0.0) -> float:
        """The run's percentage: finished nodes' shares plus ``fill`` (0..1, `node_fill`) of the
        running node's."""
        total = self.total
        if total <= 0:
            return 0.0
        finished = sum(self.weights.get(node, 0.0) for node in set(done))
        partial = 0.0
        if current is not None and current not in done:
            partial = self.weights.get(current, 0.0) * min(max(fill, 0.0), 1.0)
        return round(min(RUN_CEILING, 100.0 * (finished + partial) / total), 1)


@dataclass(frozen=True)
class StepPace:
    """The running node's steps so far: where they started and how fast they come."""

    base: float  # the node's fill when its first step came (at most STEPS_FROM)
    step: int
    max_steps: int
    since_step_s: float = 0.0  # seconds since the last step
    step_s: float | None = None  # mean seconds per step, once two steps came


def node_fill(elapsed_s: float, pace: StepPace | None = None) -> float:
    """How much of the running node's share is done: by time, or by steps once it has them."""
    if pace is None or pace.max_steps <= 0:
        return creep(elapsed_s)
    done = min(max(pace.step, 0), pace.max_steps)
    partial = 0.0
    if pace.step_s and done < pace.max_steps:
        partial = 0.9 * min(pace.since_step_s / pace.step_s, 1.0)
    return pace.base + (1.0 - pace.base) * (done + partial) / pace.max_steps


def creep(elapsed_s: float) -> float:
    """The time-only fill: ``t / (t + HALF_LIFE_S)``."""
    elapsed_s = max(elapsed_s, 0.0)
    return elapsed_s / (elapsed_s + HALF_LIFE_S)
