"""The pipeline: job input -> validated request -> ComfyUI run -> outputs -> delivery -> result.

One short step per stage, each taking values and returning values:

    validate -> prepare (upload inputs, find output nodes) -> submit and track -> collect
             -> deliver -> assemble

Each step calls the module that owns its concept (job.py, comfy/, inputs/, outputs.py, storage/,
result.py); everything a step creates goes on the job's one `JobCleanup` list at once. No
parsing, no environment reads and no message strings live here: they belong to job.py, config.py
and errors.py. docs/architecture.md draws the whole flow.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from .after_result import AfterResult, Forget, tidy
from .browser_nodes import BrowserHandshake, browser_nodes, plan_browser_nodes
from .cleanup import JobCleanup
from .comfy.aftercare import after_failure, restarting
from .comfy.client import ComfyClient, QueueEntry
from .comfy.client_ids import is_local_host, uploads_extra
from .comfy.connection import ComfyConnection, ConnectionOptions
from .comfy.folders import ComfyFolders
from .comfy.liveness import LivenessOptions
from .comfy.nodeinfo import NodeClasses
from .comfy.process import comfy_pid
from .comfy.recovery import Recovery, RecoveryOptions
from .comfy.session import PromptOutcome, PromptTracker, TrackerOptions
from .comfy.stopping import StopOutcome, stop_prompt
from .config import Settings
from .conversion import convert_outputs
from .destination import Destination
from .error_result import error_result, redact_result
from .errors import (
    ComfyCrashed,
    ComfyFrozen,
    ComfyStalled,
    ComfyUnavailable,
    FetchFailed,
    Interrupted,
    JobTimeout,
    NodesMissing,
    NoOutputs,
    OutputFailed,
    OutputRewritten,
    OutputTooLarge,
    QueueWaitTimeout,
    execution_failure,
)
from .inputs.staging import stage_inputs
from .job import JobLimits, JobRequest, parse_job_input, parse_s3_config, resolve_mode, upload_file_limit
from .leftovers import clear_dead_workers_history, remove_left_behind, written_finder
from .media import SNIFF_BYTES, sniff_mime
from .models import check_workflow, read_missing
from .outputs import (
    FileRef,
    PromptOutputs,
    WrittenFiles,
    collect_outputs,
    execution_window,
    files_written,
    silent_outputs,
)
from .progress import ProgressReporter, Sender
from .result import WIDE_MS, Timings, assemble_result
from .server_paths import hide_paths_in_texts
from .storage import OutputFile
from .storage.delivery import deliver_outputs
from .storage.plan import plan_delivery, serialized_size
from .storage.s3 import S3Clients, S3Delivery
from .validation_errors import describe_validation_errors
from .workflow import missing_classes, with_renamed_inputs, with_rerun_marker
from .workflow_limits import check_file_inputs

__all__ = ["Worker"]

logger = logging.getLogger(__name__)

SenderFactory = Callable[[dict[str, Any]], Sender | None]


class Worker:
    """Runs jobs against one ComfyUI. ``handle`` is the RunPod handler (async, so cancel reaches it).

    Jobs may overlap (the SDK runs up to COMFY_PIPELINE_DEPTH at once): each has its own `_JobRun`
    and they share one `ComfyConnection`. With ``keep_connection`` (``python -m handler``) that
    connection lives as long as the worker (`aclose` ends it), and each job's housekeeping (its
    files, its history entry) runs just after its result is returned (handler/after_result.py;
    `settle` waits for it). Otherwise the connection closes whenever no job holds it and the
    housekeeping runs before the result, so a caller that runs jobs in passing leaves nothing open.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        progress_sender: SenderFactory | None = None,
        keep_connection: bool = False,
    ) -> None:
        self.settings = settings
        self.folders = ComfyFolders(settings.comfyui_path)
        self.node_classes = NodeClasses()  # from /object_info, stable for a ComfyUI's life
        self.s3_clients = S3Clients(settings.storage)
        self.browser_nodes = browser_nodes(settings.browser_nodes)
        self._progress_sender = progress_sender
        self._keep_connection = keep_connection
        self._connection: ComfyConnection | None = None
        self._recovery: Recovery | None = None  # with the connection: orphans, restarts, the gate
        self._stuck: str | None = None  # ComfyUI could not be freed: outlives any connection
        self._connection_loop: asyncio.AbstractEventLoop | None = None
        self._holders = 0
        self._after_result = AfterResult()  # files and history entries of jobs whose results are out

    @property
    def _restartable(self) -> bool:
        """ComfyUI can be restarted in place: start.sh supervises it (COMFY_SUPERVISED) and the
        worker knows its process (COMFY_PID_FILE). Otherwise RunPod replaces the worker."""
        return self.settings.comfy_supervised and self.settings.comfy_pid_file is not None

    def capacity(self) -> int:
        """Jobs the SDK may hold now (its concurrency_modifier): one fewer while an orphan prompt or
        a restart holds ComfyUI (docs/throughput.md, "Deadlines")."""
        depth = self.settings.pipeline_depth
        busy = self._recovery is not None and self._recovery.busy
        return max(1, depth - 1) if busy else depth

    async def handle(self, job: dict[str, Any]) -> dict[str, Any]:
        """Run one RunPod job and return its result; never raises except on cancellation."""
        cleanup = JobCleanup(self.folders, enabled=self.settings.cleanup)
        secrets: list[str | None] = [self.settings.comfy_org_api_key]
        connection = self._acquire()
        finished: str | None = None  # the prompt of a job that succeeded: its history entry goes
        defer = False
        try:
            result, finished = await self._run_job(job, cleanup, secrets, connection)
            if self.settings.refresh_worker:
                result["refresh_worker"] = True
            # A worker that lives on tidies up after the result is out; one about to be replaced
            # (refresh_worker) or run in passing does it before (handler/after_result.py).
            defer = self._keep_connection and not result.get("refresh_worker")
        finally:
            forget = _forgetter(connection.client, finished)
            if defer:
                self._after_result.schedule(cleanup, forget)
            else:
                await tidy(cleanup, forget)
            await self._release()
        return redact_result(result, secrets)

    async def _run_job(
        self, job: Any, cleanup: JobCleanup, secrets: list[str | None], connection: ComfyConnection
    ) -> tuple[dict[str, Any], str | None]:
        """The job's result (every failure becomes one) and, if it succeeded, its prompt id."""
        comfy_pid_before = comfy_pid(self.settings.comfy_pid_file)  # start.sh writes a new one on restart
        try:
            job = job if isinstance(job, dict) else {}  # RunPod sends a dict; else a job without input
            sender = (
                self._progress_sender(job)
                if self._progress_sender and self.settings.progress_enabled
                else None
            )
            run = _JobRun(self, job, cleanup, secrets, sender, connection)
            return await run.execute(), run.finished_prompt
        except Exception as exc:  # noqa: BLE001 - every failure becomes a result, never a traceback
            if isinstance(exc, ComfyUnavailable | ComfyCrashed):
                connection.suspect()  # the next job checks that ComfyUI is back before it starts
            if isinstance(exc, ComfyFrozen | ComfyStalled):
                self._recovery_for(connection).restart_for(exc)  # in the background; jobs wait at the gate
            restarted = comfy_pid(self.settings.comfy_pid_file) != comfy_pid_before
            error = restarting(exc, supervised=self.settings.comfy_supervised, restarted=restarted)
            return error_result(error, comfy_root=str(self.settings.comfyui_path)), None

    async def settle(self) -> None:
        """Wait until the housekeeping of every returned job is done (its files and history entry gone)."""
        await self._after_result.drain()

    async def aclose(self) -> None:
        """Finish the housekeeping of returned jobs and close the ComfyUI connection (the worker
        can still run jobs: it opens a new one)."""
        await self.settle()
        connection, self._connection = self._connection, None
        recovery, self._recovery = self._recovery, None
        if recovery is not None:
            await recovery.aclose()
            self._stuck = recovery.stuck
        if connection is not None:
            await connection.aclose()

    def _recovery_for(self, connection: ComfyConnection) -> Recovery:
        if self._recovery is None:
            timeouts = self.settings.timeouts
            self._recovery = Recovery(
                connection.client,
                RecoveryOptions(
                    settle_s=timeouts.interrupt_settle_s,
                    probe_s=timeouts.liveness_probe_s,
                    ready_timeout_s=timeouts.ready_s,
                    ready_poll_s=timeouts.ready_poll_s,
                    pid_file=self.settings.comfy_pid_file,
                    restartable=self._restartable,
                ),
                on_restarted=connection.suspect,
                stuck=self._stuck,
            )
            self._recovery.on_idle = self._close_if_unheld
        return self._recovery

    def _close_if_unheld(self) -> None:
        # A connection kept open for an orphan (see _release) closes once it is dealt with.
        if self._holders == 0 and not self._keep_connection and self._connection is not None:
            asyncio.get_running_loop().create_task(self.aclose())

    def _acquire(self) -> ComfyConnection:
        loop = asyncio.get_running_loop()
        if self._connection is None or self._connection_loop is not loop:
            # A new event loop (a caller that runs each job in its own asyncio.run) gets its own.
            self._connection = ComfyConnection(
                self.settings.comfy_host,
                ConnectionOptions(
                    http_timeout_s=self.settings.timeouts.http_s,
                    reconnect_attempts=self.settings.ws_reconnect_attempts,
                    reconnect_delay_s=self.settings.ws_reconnect_delay_s,
                    pid_file=self.settings.comfy_pid_file,
                    supervised=self.settings.comfy_supervised,
                    trace=self.settings.ws_trace,
                    liveness=LivenessOptions(
                        probe_s=self.settings.timeouts.liveness_probe_s,
                        unresponsive_s=self.settings.timeouts.unresponsive_s,
                        stall_s=self.settings.timeouts.runner_stall_s,
                        pid_file=self.settings.comfy_pid_file,
                        restartable=self._restartable,
                    ),
                ),
            )
            self._connection.start()
            self._recovery = None
            self._connection_loop, self._holders = loop, 0
        self._holders += 1
        return self._connection

    async def _release(self) -> None:
        self._holders -= 1
        busy = self._recovery is not None and self._recovery.busy  # it still needs the connection
        if self._holders == 0 and not self._keep_connection and not busy:
            await self.aclose()


@dataclass(frozen=True)
class _ValidJob:
    """What `validate` makes of the raw job."""

    request: JobRequest
    destination: Destination | None  # the job's s3Config, else the environment's bucket
    output_mode: str  # base64, s3 or auto


@dataclass(frozen=True)
class _Prepared:
    """The workflow as ComfyUI will run it, which of its nodes are outputs, and how its browser
    nodes were handled (handler/browser_nodes.py)."""

    workflow: dict[str, dict[str, Any]]
    output_nodes: frozenset[str]
    browser_answers: dict[str, BrowserHandshake]  # node id -> how to refuse its render request
    notes: list[str]  # what the worker changed about the workflow, for the result's notes


@dataclass(frozen=True)
class _Tracked:
    """How the prompt ended, and the files it wrote that no node reported (SharpPredict)."""

    outcome: PromptOutcome
    unreported: list[FileRef]


@dataclass(frozen=True)
class _Collected:
    """The outputs fetched to disk, the texts, and the non-fatal problems met on the way."""

    files: list[OutputFile]
    found: PromptOutputs
    problems: list[str]
    notes: list[str]  # the workflow's notes plus one per output conversion
    started: float  # time.monotonic() when collecting began: collect_ms runs to the end of delivery


class _Whereabouts:
    """Where the job is, for the one reader that cannot be handed a value: the deadline.

    A timeout or cancel can strike inside any step; the message says which stage it hit, and
    the prompt (once queued) is stopped.
    """

    def __init__(self) -> None:
        self.stage = "validating the input"
        self.prompt_id: str | None = None  # set once the prompt is about to be queued
        self.tracker: PromptTracker | None = None
        self.workflow: dict[str, dict[str, Any]] = {}  # as queued, to find what a stopped prompt wrote
        self.output_nodes: frozenset[str] = frozenset()

    def describe(self) -> str:
        return self.tracker.stage if self.tracker and self.prompt_id else self.stage


class _JobRun:
    """One job: the steps in order, each handing its result to the next."""

    def __init__(
        self,
        worker: Worker,
        job: dict[str, Any],
        cleanup: JobCleanup,
        secrets: list[str | None],
        sender: Sender | None,
        connection: ComfyConnection,
    ) -> None:
        self.connection = connection
        self.recovery = worker._recovery_for(connection)
        self.settings = worker.settings
        self.folders = worker.folders
        self.node_classes = worker.node_classes
        self.browser_nodes = worker.browser_nodes
        self.s3_clients = worker.s3_clients
        self.job = job
        self.job_id = str(job.get("id", "local"))
        self.cleanup = cleanup
        self.secrets = secrets
        self.timings = Timings()
        self.reporter = ProgressReporter(sender, interval_s=self.settings.progress_interval_s)
        self.where = _Whereabouts()
        self.deadline: asyncio.Timeout | None = None
        self.timeout_s = 0.0
        self.finished_prompt: str | None = None  # set once the result is assembled

    async def execute(self) -> dict[str, Any]:
        workdir = self.cleanup.make_workdir()
        valid = self._validate()
        comfy = self.connection.client
        try:
            async with asyncio.timeout(valid.request.timeout_s) as deadline:
                self.deadline = deadline
                return await self._run(comfy, valid, workdir)
        except TimeoutError:
            if not deadline.expired():
                raise
            stopped = await self._stop(comfy)  # within COMFY_STOP_WAIT_S: the deadline is kept
            raise self._timeout_error(valid.request.timeout_s, stopped) from None
        except asyncio.CancelledError:
            logger.info("job %s cancelled; stopping prompt %s", self.job_id, self.where.prompt_id)
            await self._stop(comfy)
            raise

    # The deadline has three legs: up to queueing, the job's timeout from its start; while its
    # prompt waits behind another job's, COMFY_QUEUE_WAIT_TIMEOUT_S; from the moment ComfyUI starts
    # executing it, the job's timeout again (docs/throughput.md).

    def _on_queued(self) -> None:
        self._reschedule(self.settings.timeouts.queue_wait_s)

    def _on_started(self) -> None:
        self._reschedule(self.timeout_s)

    def _reschedule(self, seconds: float) -> None:
        if self.deadline is not None and not self.deadline.expired():
            self.deadline.reschedule(asyncio.get_running_loop().time() + seconds)

    def _timeout_error(self, timeout_s: float, stopped: StopOutcome) -> JobTimeout:
        tracker = self.where.tracker
        if tracker is not None and tracker.queued_at is not None and tracker.started_at is None:
            wait_s = self.settings.timeouts.queue_wait_s
            return QueueWaitTimeout(wait_s, prompt_id=self.where.prompt_id, prompt_state=stopped.state)
        return JobTimeout(
            timeout_s, stage=self.where.describe(), prompt_id=self.where.prompt_id, prompt_state=stopped.state
        )

    async def _run(self, comfy: ComfyClient, valid: _ValidJob, workdir: Path) -> dict[str, Any]:
        self.timeout_s = valid.request.timeout_s
        await self._check_job_bucket(valid)
        await self._wait_for_comfy()
        try:
            prepared = await self._prepare(comfy, valid.request, valid.destination, workdir)
            tracked = await self._track(comfy, valid.request, prepared, workdir)
            collected = await self._collect(comfy, valid.request, tracked, prepared.notes, workdir)
            result = await self._deliver(collected, valid, tracked.outcome.prompt_id)
        except Exception as exc:
            # Out of ComfyUI's queue and history whatever failed; after an OOM, /free (aftercare.py).
            settle_s = self.settings.timeouts.interrupt_settle_s
            await after_failure(comfy, self.where.prompt_id, exc, settle_s=settle_s)
            raise
        # ComfyUI keeps every prompt (workflow included) in memory until told: `handle` has its
        # history entry deleted once the result is out.
        self.finished_prompt = tracked.outcome.prompt_id
        return result

    # -- validate ---------------------------------------------------------------------------------

    def _validate(self) -> _ValidJob:
        started = time.monotonic()
        request = parse_job_input(
            self.job.get("input"),
            JobLimits(
                max_input_bytes=self.settings.max_input_bytes,
                default_timeout_s=self.settings.timeouts.job_s,
                default_api_key=self.settings.comfy_org_api_key,
                allowed_input_paths=self.settings.allowed_input_paths,
            ),
        )
        self.secrets.append(request.api_key)
        self.secrets.extend(value for entry in request.remote_inputs for _, value in entry.headers)
        check_workflow(request.workflow, read_missing(self.settings.models_status_file))
        # RunPod's per-request s3Config, next to input, wins over the environment's bucket.
        job_bucket = parse_s3_config(self.job.get("s3Config"), defaults=self.settings.storage)
        destination = job_bucket or self.settings.storage
        if destination is not None:
            self.secrets.append(destination.secret_access_key)
        output_mode = resolve_mode(request.output_mode, has_destination=destination is not None)
        self.timings.since("validate_ms", started)
        return _ValidJob(request, destination, output_mode)

    async def _check_job_bucket(self, valid: _ValidJob) -> None:
        if valid.destination is not None and valid.destination.source == "s3Config":
            self.where.stage = "checking the job's s3Config bucket"
            await self._s3(valid.destination).check()  # fail before spending GPU time, not after

    async def _wait_for_comfy(self) -> None:
        """Readiness is checked when the connection is made or after a failure, not every job.

        First the gate: while a stopped prompt that ComfyUI has not let go of, or a restart, holds
        ComfyUI, the job waits (comfy/recovery.py) instead of queueing behind it.
        """
        waited = 0.0
        while True:
            self.where.stage = "waiting for ComfyUI to let go of a stopped prompt or to restart"
            if self.recovery.busy:
                self.reporter.stage("starting")
            waited += await self.recovery.wait_free()
            self.where.stage = "waiting for ComfyUI to start"
            ready_s = await self.connection.ensure_ready(
                timeout_s=self.settings.timeouts.ready_s, poll_s=self.settings.timeouts.ready_poll_s
            )
            if ready_s:
                self.reporter.stage("starting")
            waited += ready_s
            if self.settings.clear_leftovers and is_local_host(self.connection.host):
                await self.recovery.clear_leftovers(self.connection.client_id, clean=self._clean_leftover)
                await self._clear_dead_workers_history()
            if not self.recovery.busy:  # clearing a dead worker's running prompt closes the gate
                break
        self.timings.add("ready_ms", waited)

    async def _clean_leftover(self, entry: QueueEntry, history: dict[str, Any] | None) -> None:
        """A dead worker's queued or running prompt, once ComfyUI let go of it: the inputs its job
        uploaded and the files it wrote (leftovers.py), unless COMFY_CLEANUP is off."""
        if self.settings.cleanup:
            await asyncio.to_thread(remove_left_behind, self.folders, entry.inputs, history)

    async def _clear_dead_workers_history(self) -> None:
        """Once per connection: what dead worker processes left in ComfyUI's history (leftovers.py)."""
        if self.connection.history_checked:
            return
        self.connection.history_checked = True
        await clear_dead_workers_history(
            self.connection.client,
            self.folders,
            own_client_id=self.connection.client_id,
            remove_files=self.settings.cleanup,
        )

    # -- prepare ----------------------------------------------------------------------------------

    async def _prepare(
        self, comfy: ComfyClient, request: JobRequest, destination: Destination | None, workdir: Path
    ) -> _Prepared:
        renamed = await self._upload(comfy, request, destination, workdir)
        known = self.node_classes.is_output
        await self.node_classes.learn(comfy, request.workflow)
        missing = missing_classes(request.workflow, known)
        if missing:  # fail before queueing, naming every missing class at once
            raise NodesMissing(missing)
        check_file_inputs(
            request.workflow, self.node_classes.file_inputs, allowed_paths=self.settings.allowed_input_paths
        )
        plan = plan_browser_nodes(
            request.workflow, self.browser_nodes, is_output=lambda cls: known.get(cls, False)
        )
        notes = plan.notes({i: str(n["class_type"]) for i, n in request.workflow.items()})
        output_nodes = self.node_classes.output_nodes(plan.workflow)
        workflow = with_renamed_inputs(plan.workflow, renamed)
        if self.settings.rerun_output_nodes:
            # Unique per attempt, not the job id: RunPod's /retry runs a job again under the same id.
            workflow = with_rerun_marker(workflow, output_nodes, uuid.uuid4().hex)
        return _Prepared(workflow, output_nodes, plan.answered, notes)

    async def _upload(
        self, comfy: ComfyClient, request: JobRequest, destination: Destination | None, workdir: Path
    ) -> dict[str, str]:
        """The job's inputs into ComfyUI's input/; input name in the job -> name stored there."""
        started = time.monotonic()
        renamed = await stage_inputs(
            comfy,
            request,
            url_settings=self.settings.input_urls,
            max_file_bytes=upload_file_limit(self.settings.max_input_bytes),
            workdir=workdir,
            bucket=destination,
            on_stored=self.cleanup.add_input,
            on_stage=self._on_stage,
        )
        self.timings.since("upload_ms", started)
        return renamed

    def _on_stage(self, what: str, progress_stage: str) -> None:
        self.where.stage = what
        if progress_stage:
            self.reporter.stage(progress_stage)

    # -- submit and track -------------------------------------------------------------------------

    async def _track(
        self, comfy: ComfyClient, request: JobRequest, prepared: _Prepared, workdir: Path
    ) -> _Tracked:
        """Queue and follow the prompt; queue it once more if ComfyUI was restarted under it
        before it started (it sat behind an orphan or in a frozen or stalled ComfyUI)."""
        restarts = self.recovery.restarts
        try:
            return await self._track_once(comfy, request, prepared, workdir)
        except (ComfyCrashed, ComfyUnavailable, ComfyFrozen, ComfyStalled, Interrupted):
            tracker = self.where.tracker
            if self.recovery.restarts == restarts or tracker is None or tracker.started_at is not None:
                raise
        logger.info(
            "job %s: ComfyUI was restarted before prompt %s ran; queueing it again",
            self.job_id,
            self.where.prompt_id,
        )
        self.connection.suspect()
        await self._wait_for_comfy()
        return await self._track_once(comfy, request, prepared, workdir)

    async def _track_once(
        self, comfy: ComfyClient, request: JobRequest, prepared: _Prepared, workdir: Path
    ) -> _Tracked:
        self.where.stage = "queueing the workflow"
        prompt_id = str(uuid.uuid4())
        tracker = PromptTracker(
            self.connection,
            TrackerOptions(
                ws_idle_s=self.settings.timeouts.ws_idle_s,
                reconnect_attempts=self.settings.ws_reconnect_attempts,
                reconnect_delay_s=self.settings.ws_reconnect_delay_s,
                pid_file=self.settings.comfy_pid_file,
            ),
            workflow=prepared.workflow,
            output_nodes=prepared.output_nodes,
            workdir=workdir,
            on_progress=self.reporter.update,
            on_queued=self._on_queued,
            on_started=self._on_started,
            browser_answers=prepared.browser_answers,
        )
        self.where.prompt_id, self.where.tracker = prompt_id, tracker
        self.where.workflow, self.where.output_nodes = prepared.workflow, prepared.output_nodes
        # The names it uploaded go with the prompt: a worker clearing it after this process died
        # removes them too (client_ids.py).
        extra_data: dict[str, Any] = uploads_extra(self.cleanup.inputs)
        if request.api_key:
            extra_data["api_key_comfy_org"] = request.api_key
        warning = self.connection.capabilities.key_warning() if request.api_key else None
        if warning:
            logger.warning("job %s: %s", self.job_id, warning)
        outcome = await tracker.run(prompt_id=prompt_id, extra_data=extra_data)
        streamed_nodes = {image.node_id for image in outcome.streamed}
        written = await self._written(outcome.history, streamed_nodes)
        started = outcome.started_at or outcome.queued_at
        self.timings.add("queue_wait_ms", started - outcome.queued_at)
        self.timings.add("execution_ms", outcome.finished_at - started)
        if outcome.status == "interrupted":
            raise Interrupted(outcome.terminal_message[1], prompt_id=outcome.prompt_id)
        if outcome.status == "error":
            raise execution_failure(outcome.terminal_message[1], prompt_id=outcome.prompt_id)
        return _Tracked(outcome, written.unreported)

    async def _written(self, history: dict[str, Any] | None, streamed_nodes: set[str]) -> WrittenFiles:
        """Every file the prompt wrote goes on the cleanup list; the unreported ones are returned too.

        Looking on disk for unreported files (only when an output node reported nothing) runs in
        a thread: the event loop keeps serving the other jobs a pipelined worker holds.
        """
        find = partial(
            files_written,
            history,
            output_nodes=self.where.output_nodes,
            streamed_nodes=streamed_nodes,
            find_written=written_finder(self.folders, self.where.workflow),
        )
        silent = silent_outputs(history, output_nodes=self.where.output_nodes, streamed_nodes=streamed_nodes)
        written = await asyncio.to_thread(find) if silent else find()
        window = execution_window(history) if history is not None else None
        self.cleanup.add_outputs(written.paths, written_by_ns=window[1] if window else None)
        return written

    async def _stop(self, comfy: ComfyClient) -> StopOutcome:
        """After a timeout or cancel: stop our prompt (if queued) within COMFY_STOP_WAIT_S and clean
        up what it wrote; one that ComfyUI has not let go of goes to the recovery (an orphan)."""
        prompt_id = self.where.prompt_id
        if prompt_id is None:
            return StopOutcome("not_queued")
        stopped = await stop_prompt(comfy, prompt_id, budget_s=self.settings.timeouts.stop_wait_s)
        if stopped.state == "still_running":
            self.recovery.adopt(prompt_id, on_released=self._orphan_cleaner())
        else:
            await self._written(stopped.history, set())
        return stopped

    def _orphan_cleaner(self) -> Callable[[dict[str, Any] | None], Awaitable[None]]:
        """What removes an orphan's outputs once it ends: those its history names (and unreported
        ones in its run), or, after a restart (no history), what appeared in output/ since it started."""
        folders, workflow, output_nodes = self.folders, self.where.workflow, self.where.output_nodes
        tracker = self.where.tracker
        started_ns = None
        if tracker is not None and tracker.started_at is not None:
            started_ns = time.time_ns() - int((time.monotonic() - tracker.started_at) * 1e9) - 1_000_000
        enabled = self.settings.cleanup
        find_written = written_finder(folders, workflow)

        def written(history: dict[str, Any] | None) -> list[tuple[str, str]]:
            if history is not None:
                return files_written(
                    history, output_nodes=output_nodes, streamed_nodes=set(), find_written=find_written
                ).paths
            if started_ns is None:
                return []
            return [("output", path) for path in folders.written_between((started_ns, time.time_ns()), [])]

        async def clean(history: dict[str, Any] | None) -> None:
            if not enabled:
                return
            window = execution_window(history) if history is not None else None
            for folder_type, relpath in await asyncio.to_thread(written, history):
                folders.remove(folder_type, relpath, written_by_ns=window[1] if window else None)

        return clean

    # -- collect ----------------------------------------------------------------------------------

    async def _collect(
        self, comfy: ComfyClient, request: JobRequest, tracked: _Tracked, notes: list[str], workdir: Path
    ) -> _Collected:
        started = time.monotonic()
        outcome = tracked.outcome
        self.where.stage = "collecting outputs"
        self.reporter.stage("collecting")
        found = collect_outputs(outcome.history.get("outputs"), include_temp=request.include_temp)
        files: list[OutputFile] = []
        fetch_problems: list[str] = []
        # On ComfyUI's own disk, the prompt's files are read where ComfyUI wrote them; else GET /view.
        window = execution_window(outcome.history) if is_local_host(self.connection.host) else None
        for index, ref in enumerate([*found.files, *tracked.unreported], start=1):
            local = self.folders.written_file(ref.folder_type, ref.relpath, window) if window else None
            if (
                local is None
                and window is not None
                and self.folders.rewritten_after(ref.folder_type, ref.relpath, window[1])
            ):
                # What is there now is a later prompt's file: never returned as this job's output.
                fetch_problems.append(
                    OutputRewritten(ref.filename, f"{ref.folder_type}/{ref.relpath}").message
                )
                continue
            try:
                files.append(
                    _output_file(ref, local, in_place=True)
                    if local is not None
                    else await _fetch(comfy, ref, workdir / f"{index:05d}_{Path(ref.filename).name}")
                )
            except FetchFailed as exc:
                fetch_problems.append(exc.message)
        files.extend(_streamed(outcome))
        if request.convert.ply is not None:  # decoding splats takes a while: off the event loop
            files, converted = await asyncio.to_thread(convert_outputs, files, request.convert, workdir)
        else:
            converted = []
        if not files and not found.texts:
            if fetch_problems:
                raise OutputFailed(fetch_problems, prompt_id=outcome.prompt_id)
            raise NoOutputs(prompt_id=outcome.prompt_id, skipped_temp=found.skipped_temp)
        # ComfyUI's texts keep no server path outside its folder, as in an error result.
        keep = (str(self.settings.comfyui_path),)
        problems = hide_paths_in_texts(_skipped_branches(outcome), keep=keep) + fetch_problems
        return _Collected(files, found, problems, [*notes, *converted], started)

    # -- deliver and assemble ---------------------------------------------------------------------

    async def _deliver(self, collected: _Collected, valid: _ValidJob, prompt_id: str) -> dict[str, Any]:
        """Send each output inline or to S3 so that the serialized result fits RESULT_MAX_BYTES."""
        files, found, problems, notes = collected.files, collected.found, collected.problems, collected.notes
        limit = self.settings.result_max_bytes
        empty = [item.entry("base64", "") for item in files]
        skeleton = assemble_result(files, empty, found, prompt_id, problems, notes)
        skeleton["timings"] = {**self.timings.as_dict(), "collect_ms": WIDE_MS, "total_ms": WIDE_MS}
        remote = plan_delivery(
            [item.size_bytes for item in files],
            mode=valid.output_mode,
            has_destination=valid.destination is not None,
            skeleton_bytes=serialized_size(skeleton),
            limit_bytes=limit,
        )
        s3 = self._s3(valid.destination) if remote and valid.destination is not None else None
        entries = await deliver_outputs(files, remote=remote, s3=s3)
        result = assemble_result(files, entries, found, prompt_id, problems, notes)
        self.timings.since("collect_ms", collected.started)
        result["timings"] = self.timings.as_dict()
        size = serialized_size(result)
        if size > limit:  # the plan's estimate was off: never send it
            raise OutputTooLarge(
                size_bytes=size,
                limit_bytes=limit,
                mode=valid.output_mode,
                has_destination=valid.destination is not None,
            )
        return result

    def _s3(self, destination: Destination) -> S3Delivery:
        return self.s3_clients.delivery(
            destination, job_id=self.job_id, concurrency=self.settings.upload_concurrency
        )


def _forgetter(comfy: ComfyClient, prompt_id: str | None) -> Forget | None:
    """What deletes a finished prompt's history entry (best effort: comfy.delete_history logs)."""
    if prompt_id is None:
        return None
    return lambda: comfy.delete_history(prompt_id)


def _skipped_branches(outcome: PromptOutcome) -> list[str]:
    """ComfyUI runs the valid outputs of a partly broken workflow; say which ones it skipped."""
    if not outcome.node_errors:
        return []
    lines = describe_validation_errors({"node_errors": outcome.node_errors}, {})
    return [f"skipped by ComfyUI: {line}" for line in lines]


async def _fetch(comfy: ComfyClient, ref: FileRef, dest: Path) -> OutputFile:
    await comfy.download(
        filename=ref.filename, subfolder=ref.subfolder, folder_type=ref.folder_type, dest=dest
    )
    return _output_file(ref, dest)


def _output_file(ref: FileRef, path: Path, *, in_place: bool = False) -> OutputFile:
    """The output at ``path``; ``in_place``: ComfyUI's own file, whose write time is kept so that
    delivery can tell a later prompt's rewrite of it (storage/delivery.py)."""
    try:
        with path.open("rb") as handle:
            stat = os.fstat(handle.fileno())
            head = handle.read(SNIFF_BYTES)
    except OSError as exc:
        raise FetchFailed(ref.filename, f"it could not be read ({exc.strerror or exc})") from exc
    return OutputFile(
        node_id=ref.node_id or None,
        filename=ref.filename,
        subfolder=ref.subfolder,
        path=path,
        mime_type=sniff_mime(head, ref.filename),
        size_bytes=stat.st_size,
        metadata=ref.metadata,
        written_ns=stat.st_mtime_ns if in_place else None,
    )


def _streamed(outcome: PromptOutcome) -> list[OutputFile]:
    return [
        OutputFile(
            node_id=image.node_id,
            filename=f"{outcome.prompt_id[:8]}_{image.path.name}",
            subfolder="",
            path=image.path,
            mime_type=image.mime_type,
            size_bytes=image.path.stat().st_size,
        )
        for image in outcome.streamed
    ]
