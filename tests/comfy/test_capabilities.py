"""Which newer ComfyUI mechanisms the worker uses, decided from the probes' answers (pure)."""

from __future__ import annotations

from handler.comfy.capabilities import LEGACY, Capabilities, RouteAnswer, detect_capabilities

STATS_0_3_64 = {"system": {"comfyui_version": "0.3.64", "os": "posix"}}
STATS_CURRENT = {"system": {"comfyui_version": "0.38.1", "os": "linux"}}


def test_0_3_64_answers_the_jobs_probe_from_its_static_route_and_gets_todays_protocol() -> None:
    # 0.3.64: no such route; the static file route answers 404 with an empty body (PROFILES.md).
    found = detect_capabilities(STATS_0_3_64, job_probe=RouteAnswer(404, None), cancel_probe=None)
    assert found == Capabilities(comfyui_version="0.3.64")
    assert (found.jobs_api, found.jobs_cancel, found.sensitive_slot) == (False, False, False)
    assert found.describe() == "ComfyUI 0.3.64: the 0.3.64 protocol"
    assert "GET /queue" in (found.key_warning() or "")


def test_todays_comfyui_has_the_jobs_api_its_cancel_route_and_the_sensitive_slot() -> None:
    found = detect_capabilities(
        STATS_CURRENT,
        job_probe=RouteAnswer(404, {"error": "Job not found"}),
        cancel_probe=RouteAnswer(200, {"cancelled": False}),
    )
    assert found == Capabilities("0.38.1", jobs_api=True, jobs_cancel=True, sensitive_slot=True)
    assert found.describe() == "ComfyUI 0.38.1: jobs API, jobs cancel, sensitive key slot"
    assert found.key_warning() is None


def test_a_jobs_api_without_the_cancel_route_keeps_the_old_stop() -> None:
    found = detect_capabilities(
        STATS_CURRENT,
        job_probe=RouteAnswer(404, {"error": "Job not found"}),
        cancel_probe=RouteAnswer(405, None),
    )
    assert found.jobs_api and not found.jobs_cancel


def test_failed_probes_and_odd_answers_mean_the_0_3_64_protocol() -> None:
    assert detect_capabilities({}, job_probe=None, cancel_probe=None) == LEGACY
    assert (
        detect_capabilities("not json", job_probe=RouteAnswer(500, {"error": "x"}), cancel_probe=None)
        == LEGACY
    )
    # A proxy answering JSON 404 for everything is not the jobs API unless it says "error".
    assert not detect_capabilities(
        {}, job_probe=RouteAnswer(404, {"detail": "nope"}), cancel_probe=None
    ).jobs_api
