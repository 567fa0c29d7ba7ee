"""The pipeline: job input -> validated request -> ComfyUI run -> outputs -> delivery -> result.

One short method per step. No parsing, no environment reads and no message strings live here:
they belong to job.py, config.py and errors.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .browser_nodes import BrowserHandshake, browser_nodes, plan_browser_nodes
from .comfy.client import ComfyClient
from .comfy.folders import ComfyFolders
from .comfy.readiness import wait_until_ready
from .comfy.session import PromptOutcome, PromptTracker, TrackerOptions
from .config import Settings
from .conversion import convert_outputs
from .errors import (
    ExecutionFailed,
    FetchFailed,
    Interrupted,
    JobTimeout,
    NodesMissing,
    NoOutputs,
    OutputFailed,
    OutputTooLarge,
    WorkerError,
    describe_validation_errors,
    error_result,
    redact_result,
)
from .inputs.download import InputDownloads
from .job import JobLimits, JobRequest, parse_job_input, parse_s3_config, upload_file_limit
from .media import SNIFF_BYTES, is_image, sniff_mime
from .models import check_workflow, read_missing
from .outputs import FileRef, FolderSnapshot, PromptOutputs, collect_outputs, execution_window, new_files
from .progress import ProgressReporter, Sender
from .storage import InlineDelivery, OutputFile
from .storage.destination import Destination
from .storage.plan import plan_delivery, resolve_mode, serialized_size
from .storage.s3 import S3Delivery, make_client
from .workflow import class_types, missing_classes, with_renamed_inputs, with_rerun_marker
from .workflow_limits import check_file_inputs, file_inputs_of

__all__ = ["Worker"]

logger = logging.getLogger(__name__)

SenderFactory = Callable[[dict[str, Any]], Sender | None]


class Worker:
    """Runs jobs against one ComfyUI. ``handle`` is the RunPod handler (async, so cancel reaches it)."""

    def __init__(
        self,
        settings: Settings,
        *,
        progress_sender: SenderFactory | None = None,
    ) -> None:
        self.settings = settings
        self.folders = ComfyFolders(settings.comfyui_path)
        self._progress_sender = progress_sender
        self._env_s3_client: Any = None  # boto3 clients are thread-safe and slow to build
        self._is_output_class: dict[str, bool] = {}  # from /object_info, stable for a ComfyUI's life
        self._file_inputs: dict[str, frozenset[str]] = {}  # inputs /object_info marks as uploads
        self.browser_nodes = browser_nodes(settings.browser_nodes)

    async def handle(self, job: dict[str, Any]) -> dict[str, Any]:
        """Run one RunPod job and return its result; never raises except on cancellation."""
        run = _JobRun(self, job)
        try:
            result = await run.execute()
        except Exception as exc:  # noqa: BLE001 - every failure becomes a result, never a traceback
            result = error_result(exc)
        finally:
            run.cleanup()
        if self.settings.refresh_worker:
            result["refresh_worker"] = True
        return redact_result(result, run.secrets)


@dataclass
class _Timings:
    started: float = field(default_factory=time.monotonic)
    marks: dict[str, float] = field(default_factory=dict)

    def add(self, name: str, seconds: float) -> None:
        self.marks[name] = round(seconds * 1000.0, 1)

    def as_dict(self) -> dict[str, float]:
        return {**self.marks, "total_ms": round((time.monotonic() - self.started) * 1000.0, 1)}


class _JobRun:
    """The state of one job: what to clean up and how far it got."""

    def __init__(self, worker: Worker, job: dict[str, Any]) -> None:
        self.worker = worker
        self.settings = worker.settings
        self.job = job
        self.job_id = str(job.get("id", "local"))
        self.secrets: list[str | None] = [self.settings.comfy_org_api_key]
        self.timings = _Timings()
        self.reporter = ProgressReporter(
            worker._progress_sender(job)
            if worker._progress_sender and self.settings.progress_enabled
            else None,
            interval_s=self.settings.progress_interval_s,
        )
        self.prompt_id: str | None = None
        self.stage = "validating the input"
        self.tracker: PromptTracker | None = None
        self.uploaded: list[str] = []
        self.renamed: dict[str, str] = {}  # input name in the job -> name stored in ComfyUI's input/
        self.produced: list[tuple[str, str]] = []  # (folder type, relative path) to delete
        self.workdir = Path(tempfile.mkdtemp(prefix="comfy-job-"))
        self.before: FolderSnapshot = {}
        self.output_nodes: frozenset[str] = frozenset()
        self.silent_nodes: frozenset[str] = frozenset()
        self.unreported: list[str] = []
        self.fetched = 0
        self.destination: Destination | None = None
        self.output_mode = "base64"
        self.notes: list[str] = []  # what the worker changed about the workflow (browser nodes)
        self.browser_answers: dict[str, BrowserHandshake] = {}

    async def execute(self) -> dict[str, Any]:
        request = self._validate()
        async with ComfyClient(
            self.settings.comfy_host, http_timeout_s=self.settings.timeouts.http_s
        ) as comfy:
            try:
                async with asyncio.timeout(request.timeout_s) as deadline:
                    return await self._run(comfy, request)
            except TimeoutError:
                if not deadline.expired():
                    raise
                stage = self.tracker.stage if self.tracker and self.prompt_id else self.stage
                await self._stop_prompt(comfy)
                raise JobTimeout(request.timeout_s, stage=stage, prompt_id=self.prompt_id) from None
            except asyncio.CancelledError:
                logger.info("job %s cancelled; stopping prompt %s", self.job_id, self.prompt_id)
                await self._stop_prompt(comfy)
                raise

    def _validate(self) -> JobRequest:
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
        check_workflow(request.workflow, read_missing(self.settings.models_status_file))
        # RunPod's per-request s3Config, next to input, wins over the environment's bucket.
        job_bucket = parse_s3_config(self.job.get("s3Config"), defaults=self.settings.storage)
        self.destination = job_bucket or self.settings.storage
        if self.destination is not None:
            self.secrets.append(self.destination.secret_access_key)
        self.output_mode = resolve_mode(request.output_mode, has_destination=self.destination is not None)
        self.timings.add("validate_ms", time.monotonic() - started)
        return request

    async def _run(self, comfy: ComfyClient, request: JobRequest) -> dict[str, Any]:
        if self.destination is not None and self.destination.source == "s3Config":
            self.stage = "checking the job's s3Config bucket"
            await self._s3_delivery().check()  # fail before spending GPU time, not after
        self.stage = "waiting for ComfyUI to start"
        self.reporter.stage("starting")
        waited = await wait_until_ready(
            comfy,
            timeout_s=self.settings.timeouts.ready_s,
            poll_s=self.settings.timeouts.ready_poll_s,
            pid_file=self.settings.comfy_pid_file,
        )
        self.timings.add("ready_ms", waited)
        await self._upload(comfy, request)
        workflow, output_nodes = await self._prepare(comfy, request)
        outcome = await self._track(comfy, request, workflow, output_nodes)
        result = await self._collect(comfy, request, outcome)
        # ComfyUI keeps every prompt (workflow included) in memory until told; we have what we need.
        await comfy.delete_history(outcome.prompt_id)
        return result

    async def _upload(self, comfy: ComfyClient, request: JobRequest) -> None:
        started = time.monotonic()
        if request.images:
            self.stage = "uploading inputs"
            self.reporter.stage("uploading")
        # A per-job prefix: concurrent jobs on one ComfyUI, and a user's own files in input/ (a dev
        # pod), are never overwritten or cleaned up by this job. The workflow's references follow.
        tag = uuid.uuid4().hex[:8]
        for image in request.images:
            tagged = f"{tag}-{image.name}"
            self.uploaded.append(tagged)  # before the await: a cancel mid-upload still cleans it up
            stored = await comfy.upload(dataclasses.replace(image, name=tagged))
            if stored != tagged:
                self.uploaded.append(stored)
            self.renamed[image.name] = stored
        if request.remote_inputs:
            self.stage = "downloading inputs"
            self.secrets.extend(value for entry in request.remote_inputs for _, value in entry.headers)
            downloads = InputDownloads(
                settings=self.settings.input_urls,
                max_file_bytes=upload_file_limit(self.settings.max_input_bytes),
                workdir=self.workdir,
                tag=tag,
                bucket=self.destination,
            )
            stored_names = await downloads.run(
                request.remote_inputs, comfy, on_upload=self.uploaded.append, on_progress=self.reporter.stage
            )
            self.uploaded.extend(name for name in stored_names.values() if name not in self.uploaded)
            self.renamed.update(stored_names)
        self.timings.add("upload_ms", time.monotonic() - started)

    async def _prepare(
        self, comfy: ComfyClient, request: JobRequest
    ) -> tuple[dict[str, dict[str, Any]], frozenset[str]]:
        known = self.worker._is_output_class
        for class_type in class_types(request.workflow):
            if class_type not in known:
                info = await comfy.object_info(class_type)
                if info:
                    known[class_type] = bool(info.get("output_node"))
                    self.worker._file_inputs[class_type] = file_inputs_of(info)
        missing = missing_classes(request.workflow, known)
        if missing:  # fail before queueing, naming every missing class at once
            raise NodesMissing(missing)
        check_file_inputs(
            request.workflow, self.worker._file_inputs, allowed_paths=self.settings.allowed_input_paths
        )
        plan = plan_browser_nodes(
            request.workflow, self.worker.browser_nodes, is_output=lambda cls: known.get(cls, False)
        )
        self.notes = plan.notes({i: str(n["class_type"]) for i, n in request.workflow.items()})
        self.browser_answers = plan.answered
        output_nodes = frozenset(
            node_id for node_id, node in plan.workflow.items() if known.get(node["class_type"], False)
        )
        self.output_nodes = output_nodes
        workflow = with_renamed_inputs(plan.workflow, self.renamed)
        if not self.settings.rerun_output_nodes:
            return workflow, output_nodes
        # Unique per attempt, not the job id: RunPod's /retry runs a job again under the same id.
        return with_rerun_marker(workflow, output_nodes, uuid.uuid4().hex), output_nodes

    async def _track(
        self,
        comfy: ComfyClient,
        request: JobRequest,
        workflow: dict[str, dict[str, Any]],
        output_nodes: frozenset[str],
    ) -> PromptOutcome:
        self.stage = "queueing the workflow"
        self.before = self.worker.folders.snapshot_outputs()
        self.prompt_id = str(uuid.uuid4())
        self.tracker = PromptTracker(
            comfy,
            TrackerOptions(
                ws_idle_s=self.settings.timeouts.ws_idle_s,
                reconnect_attempts=self.settings.ws_reconnect_attempts,
                reconnect_delay_s=self.settings.ws_reconnect_delay_s,
                pid_file=self.settings.comfy_pid_file,
                trace=self.settings.ws_trace,
            ),
            workflow=workflow,
            output_nodes=output_nodes,
            workdir=self.workdir,
            on_progress=self.reporter.update,
            browser_answers=self.browser_answers,
        )
        extra_data = {"api_key_comfy_org": request.api_key} if request.api_key else {}
        outcome = await self.tracker.run(
            client_id=str(uuid.uuid4()), prompt_id=self.prompt_id, extra_data=extra_data
        )
        self._remember_produced(outcome.history, streamed={image.node_id for image in outcome.streamed})
        started = outcome.started_at or outcome.queued_at
        self.timings.add("queue_wait_ms", started - outcome.queued_at)
        self.timings.add("execution_ms", outcome.finished_at - started)
        if outcome.status == "interrupted":
            raise Interrupted(outcome.terminal_message[1], prompt_id=outcome.prompt_id)
        if outcome.status == "error":
            raise ExecutionFailed(outcome.terminal_message[1], prompt_id=outcome.prompt_id)
        return outcome

    def _remember_produced(self, history: dict[str, Any] | None, *, streamed: set[str]) -> None:
        """Note every file the prompt wrote, reported or not, so it is returned and cleaned up.

        Unreported files are looked for only when an output node reported nothing (SharpPredict),
        and only among files written while this prompt executed: other prompts on the same
        ComfyUI (other workers, a user in the UI) write to the same folder.
        """
        history = history or {}
        found = collect_outputs(history.get("outputs"), include_temp=True)
        self.produced.extend((ref.folder_type, ref.relpath) for ref in found.files)
        self.silent_nodes = self.output_nodes - set((history.get("outputs") or {}).keys()) - streamed
        window = execution_window(history)
        if not self.silent_nodes or window is None:
            return
        reported = [ref.relpath for ref in found.files if ref.folder_type == "output"]
        after = self.worker.folders.snapshot_outputs()
        self.unreported = new_files(self.before, after, reported=reported, written_between=window)
        self.produced.extend(("output", path) for path in self.unreported)

    async def _collect(
        self, comfy: ComfyClient, request: JobRequest, outcome: PromptOutcome
    ) -> dict[str, Any]:
        started = time.monotonic()
        self.stage = "collecting outputs"
        self.reporter.stage("collecting")
        found = collect_outputs(outcome.history.get("outputs"), include_temp=request.include_temp)
        refs = found.files + self._unreported()
        files: list[OutputFile] = []
        fetch_problems: list[str] = []
        for ref in refs:
            try:
                files.append(await self._fetch(comfy, ref))
            except FetchFailed as exc:
                fetch_problems.append(exc.message)
        files.extend(self._streamed(outcome))
        files, converted = await asyncio.to_thread(convert_outputs, files, request.convert)
        self.notes.extend(converted)
        problems = self._skipped_branches(outcome) + fetch_problems
        if not files and not found.texts:
            if fetch_problems:
                raise OutputFailed(fetch_problems, prompt_id=outcome.prompt_id)
            raise NoOutputs(prompt_id=outcome.prompt_id, skipped_temp=found.skipped_temp)
        result = await self._deliver(files, found, outcome.prompt_id, problems)
        self.timings.add("collect_ms", time.monotonic() - started)
        result["timings"] = self.timings.as_dict()
        size = serialized_size(result)
        if size > self.settings.result_max_bytes:  # the plan's estimate was off: never send it
            raise OutputTooLarge(
                size_bytes=size,
                limit_bytes=self.settings.result_max_bytes,
                mode=self.output_mode,
                has_destination=self.destination is not None,
            )
        return result

    @staticmethod
    def _skipped_branches(outcome: PromptOutcome) -> list[str]:
        """ComfyUI runs the valid outputs of a partly broken workflow; say which ones it skipped."""
        if not outcome.node_errors:
            return []
        lines = describe_validation_errors({"node_errors": outcome.node_errors}, {})
        return [f"skipped by ComfyUI: {line}" for line in lines]

    def _unreported(self) -> list[FileRef]:
        """Files no node reported (SharpPredict), credited to the silent node when there is one."""
        node_id = next(iter(self.silent_nodes)) if len(self.silent_nodes) == 1 else ""
        refs = []
        for relpath in self.unreported:
            subfolder, _, filename = relpath.rpartition("/")
            refs.append(FileRef(node_id, filename, subfolder, "output"))
        return refs

    async def _fetch(self, comfy: ComfyClient, ref: FileRef) -> OutputFile:
        self.fetched += 1
        dest = self.workdir / f"{self.fetched:05d}_{Path(ref.filename).name}"
        size = await comfy.download(
            filename=ref.filename, subfolder=ref.subfolder, folder_type=ref.folder_type, dest=dest
        )
        with dest.open("rb") as handle:
            head = handle.read(SNIFF_BYTES)
        return OutputFile(
            node_id=ref.node_id or None,
            filename=ref.filename,
            subfolder=ref.subfolder,
            path=dest,
            mime_type=sniff_mime(head, ref.filename),
            size_bytes=size,
        )

    def _streamed(self, outcome: PromptOutcome) -> list[OutputFile]:
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

    async def _deliver(
        self, files: list[OutputFile], found: PromptOutputs, prompt_id: str, problems: list[str]
    ) -> dict[str, Any]:
        """Send each output inline or to S3 so that the serialized result fits RESULT_MAX_BYTES."""
        limit = self.settings.result_max_bytes
        skeleton = _assemble(
            files, [item.entry("base64", "") for item in files], found, prompt_id, problems, self.notes
        )
        # Timings not measured yet are stood in for by the widest value they will plausibly have.
        skeleton["timings"] = {**self.timings.as_dict(), "collect_ms": _WIDE_MS, "total_ms": _WIDE_MS}
        remote = plan_delivery(
            [item.size_bytes for item in files],
            mode=self.output_mode,
            has_destination=self.destination is not None,
            skeleton_bytes=serialized_size(skeleton),
            limit_bytes=limit,
        )
        inline = InlineDelivery()
        s3 = self._s3_delivery() if remote else None
        # Every upload is awaited before a failure is raised: none may still be reading the job's
        # temp files (or landing in the bucket) after the job has reported.
        results = await asyncio.gather(
            *((s3 if index in remote and s3 else inline).deliver(item) for index, item in enumerate(files)),
            return_exceptions=True,
        )
        for outcome in results:
            if isinstance(outcome, BaseException):
                raise outcome
        entries = [r for r in results if isinstance(r, dict)]
        return _assemble(files, entries, found, prompt_id, problems, self.notes)

    def _s3_delivery(self) -> S3Delivery:
        assert self.destination is not None
        if self.destination == self.settings.storage:
            # The environment's client lives as long as the worker; a job's s3Config gets its own.
            if self.worker._env_s3_client is None:
                self.worker._env_s3_client = make_client(self.destination)
            client = self.worker._env_s3_client
        else:
            client = make_client(self.destination)
        return S3Delivery(
            self.destination, job_id=self.job_id, concurrency=self.settings.upload_concurrency, client=client
        )

    async def _stop_prompt(self, comfy: ComfyClient) -> None:
        """Interrupt and dequeue our prompt, then wait (bounded) until ComfyUI has let go of it."""
        if self.prompt_id is None:
            return
        try:
            deadline = time.monotonic() + self.settings.timeouts.interrupt_settle_s
            while True:
                running, pending = await comfy.queue()
                # Again on every pass: a POST /prompt still in flight may queue it after a first delete.
                if self.prompt_id in pending:
                    await comfy.delete_queued(self.prompt_id)
                elif self.prompt_id in running:
                    await comfy.interrupt(self.prompt_id)  # only ours: never another job's prompt
                else:
                    break
                if time.monotonic() >= deadline:
                    logger.warning("prompt %s still in ComfyUI's queue after the interrupt", self.prompt_id)
                    break
                await asyncio.sleep(0.05)
            self._remember_produced(await comfy.history(self.prompt_id), streamed=set())
        except WorkerError as exc:
            logger.warning("could not stop prompt %s: %s", self.prompt_id, exc.message)

    def cleanup(self) -> None:
        """Remove uploaded inputs, produced outputs and the job's temp files, whatever happened."""
        if self.settings.cleanup:
            for name in self.uploaded:
                self.worker.folders.remove("input", name)
            for folder_type, relpath in self.produced:
                self.worker.folders.remove(folder_type, relpath)
        shutil.rmtree(self.workdir, ignore_errors=True)


_WIDE_MS = 99_999_999.9


def _assemble(
    files: list[OutputFile],
    entries: list[dict[str, Any]],
    found: PromptOutputs,
    prompt_id: str,
    problems: list[str],
    notes: list[str],
) -> dict[str, Any]:
    """The result: entries split into images and other files by their real media type."""
    images = [entry for item, entry in zip(files, entries, strict=True) if is_image(item.mime_type)]
    others = [entry for item, entry in zip(files, entries, strict=True) if not is_image(item.mime_type)]
    result: dict[str, Any] = {
        "images": images,
        "files": others,
        "text": [{"node_id": t.node_id, "text": t.text} for t in found.texts],
        "prompt_id": prompt_id,
    }
    if problems:
        result["errors"] = problems
    if notes:
        result["notes"] = notes
    return result
