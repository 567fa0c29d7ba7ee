"""The run's percentage moves with time while a node runs, by steps where it has them (pure)."""

from __future__ import annotations

from handler.progress_estimate import (
    HEAVY_WEIGHT,
    RUN_CEILING,
    STEPS_FROM,
    RunPlan,
    StepPace,
    creep,
    model_behind,
    model_file,
    node_fill,
)

from . import workflows as wf


def test_a_long_node_keeps_the_percentage_moving_without_reaching_the_next_nodes_share() -> None:
    plan = RunPlan.of(wf.sampler(steps=20))  # loader and sampler weigh 3, the others 1: total 11
    assert plan.weights["1"] == plan.weights["5"] == HEAVY_WEIGHT and plan.total == 11
    at = [plan.percent(done=set(), current="1", fill=node_fill(t)) for t in (0, 10, 30, 90, 600)]
    assert at == sorted(at) and len(set(at)) == len(at)  # every second of a model load shows
    assert at[0] == 0.0 and at[2] == round(100 * 1.5 / 11, 1)  # half the loader's share at 30 s
    assert at[-1] < 100 * 3 / 11  # never the whole share: the next node's finish is more


def test_steps_fill_what_the_time_before_them_left_and_creep_between_slow_steps() -> None:
    base = min(creep(20.0), STEPS_FROM)  # 20 s moving the model to the GPU before step 1
    assert node_fill(20.0) == base  # the first step does not pull the bar back
    first = node_fill(20.0, StepPace(base, 1, 6))
    assert first == base + (1 - base) / 6
    # 10 s per step so far, 5 s since step 2: halfway to step 3 (at most 90% of a step).
    between = node_fill(45.0, StepPace(base, 2, 6, since_step_s=5.0, step_s=10.0))
    assert between == base + (1 - base) * 2.45 / 6
    stalled = node_fill(90.0, StepPace(base, 2, 6, since_step_s=50.0, step_s=10.0))
    assert between < stalled < node_fill(90.0, StepPace(base, 3, 6))  # never past the next step
    assert node_fill(99.0, StepPace(base, 6, 6, since_step_s=9.0, step_s=10.0)) == 1.0


def test_sampler_steps_fill_the_samplers_share_exactly() -> None:
    plan = RunPlan.of(wf.sampler(steps=20))
    halfway = plan.percent(done={"1", "2", "3", "4"}, current="5", fill=node_fill(0.0, StepPace(0.0, 10, 20)))
    assert halfway == round(100 * (6 + 1.5) / 11, 1)


def test_the_run_never_claims_the_jobs_end() -> None:
    plan = RunPlan.of(wf.save_image())
    assert plan.percent(done={"1", "2"}, current=None) == RUN_CEILING
    assert RunPlan({}).percent(done=set(), current=None, fill=0.5) == 0.0


def test_the_model_a_node_works_with_is_found_through_its_links() -> None:
    workflow = wf.sampler(ckpt="sd15.safetensors")
    assert model_file(workflow["1"]) == "sd15.safetensors" and model_file(workflow["5"]) is None
    assert model_behind(workflow, "5") == "sd15.safetensors"  # KSampler.model <- the loader
    assert model_behind(workflow, "4") is None  # EmptyLatentImage uses no model
