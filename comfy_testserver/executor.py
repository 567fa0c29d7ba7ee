"""The prompt worker: takes prompts off the queue, runs their nodes and writes the history.

Follows `PromptExecutor.execute` and `prompt_worker` of ComfyUI 0.3.64, which fix the message
order every transcript shows: `execution_start`, `execution_cached`, then per node
`progress_state(running)`, `executing`, progress frames, `executed`, `progress_state(finished)`;
then `execution_success` (or `execution_error` / `execution_interrupted`), the history entry,
`status` and finally `executing(node=None)`. Messages go to the prompt's client id; without one,
only `status`, `progress_state`, `progress`, previews and `execution_interrupted` are sent, to
everybody (README "Who receives what"). The `current` profile adds media `metadata` and asset ids
to output entries and keeps other prompts' cache entries (`output_records`, PROFILES.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Callable
from typing import Any

from .behaviour import Behaviour
from .browser import BrowserRenders
from .cache import CacheEntry, NodeCache
from .folders import Folders
from .graph import DependencyCycleError, ExecutionList, is_link
from .hub import Hub
from .node_context import InterruptFlag, NodeContext
from .nodes import NODE_CLASSES, InterruptProcessing, NodeResult
from .nodes.faults import OOM_TIPS, OutOfMemoryError
from .nodes.values import ModelHandle, UpscaleModel
from .output_records import Assets, VideoFacts, with_media_metadata
from .profiles import Profile
from .progress import ProgressRegistry
from .prompt_queue import PromptQueue, QueueItem
from .protocol import now_ms
from .records import ExecutionRecord, Outcome
from .validation import full_type_name

__all__ = ["Executor"]

log = logging.getLogger(__name__)


_MODEL_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf")


# What a node raises when `Behaviour.out_of_memory_class` names it (nodes/faults.py: torch's name).
_OOM_MESSAGE = (
    "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 23.55 GiB "
    "of which 1.07 GiB is free."
)


class _NodeFailure(Exception):
    """Internal signal: `node_id` failed with `error` (an InterruptProcessing or the node's own)."""

    def __init__(self, node_id: str, error: BaseException, inputs: dict[str, Any]) -> None:
        super().__init__(node_id)
        self.node_id = node_id
        self.error = error
        self.inputs = inputs


class Executor:
    """Owns the queue, the cache and the interrupt flag; runs in the server's event loop."""

    def __init__(
        self,
        folders: Folders,
        behaviour: Behaviour,
        profile: Profile,
        hub: Hub,
        records: list[ExecutionRecord],
        *,
        kill: Callable[[], None],
        on_node_start: Callable[[str, str], None] | None = None,
    ) -> None:
        self.folders = folders
        self.behaviour = behaviour
        self.profile = profile
        self.hub = hub
        self.records = records
        self.queue = PromptQueue(on_change=self.broadcast_status)
        self.cache = NodeCache()
        self.current_client_id: str | None = None
        self.last_node_id: str | None = None
        self._kill = kill
        self._on_node_start = on_node_start
        self.interrupts = InterruptFlag()
        self.loaded_models: set[str] = set()  # files a node used: "in memory" (Behaviour.model_load_delay_s)
        self.browser = BrowserRenders()
        self.assets = Assets(folders)
        self.videos = VideoFacts()
        self.prompt_worker_dead = False

    # --- called by the HTTP handlers ---------------------------------------------------------------

    def status_data(self) -> dict[str, Any]:
        return {"exec_info": {"queue_remaining": self.queue.remaining()}}

    def broadcast_status(self) -> None:
        self.hub.send("status", {"status": self.status_data()})

    def interrupt(self) -> None:
        self.interrupts.set()

    async def run_forever(self) -> None:
        while True:
            await self.queue.wait_for_work()
            self._apply_flags()
            try:
                taken = self.queue.take(die=self.behaviour.prompt_worker_dies)
            except RecursionError:
                # ComfyUI's prompt_worker thread ends here; HTTP and the socket go on answering.
                log.exception("the prompt worker died taking a prompt; no prompt will run again")
                self.prompt_worker_dead = True
                return
            if taken is not None:
                await self._execute(*taken)
                self._apply_flags()

    def _apply_flags(self) -> None:
        if self.queue.take_flags().get("free_memory"):
            self.cache.clear()

    # --- one prompt --------------------------------------------------------------------------------

    async def _execute(self, task_id: int, item: QueueItem) -> None:
        run = _PromptRun(self, item)
        self.current_client_id = item.client_id
        self.hub.context_prompt_id = item.prompt_id
        self.interrupts.clear()  # an interrupt while idle does not reach the next prompt
        started_at = time.time()
        outcome: Outcome = "error"
        try:
            outcome = await run.execute()
        except Exception:  # a bug in the fake must not wedge the queue
            log.exception("internal error while executing %s", item.prompt_id)
        self.last_node_id = None
        success = outcome == "success"
        status = {
            "status_str": "success" if success else "error",
            "completed": success,
            "messages": run.messages,
        }
        self.queue.task_done(
            task_id,
            {"outputs": run.ui_outputs, "status": status, "meta": run.meta},
            visible_after_s=self.behaviour.history_delay_s,
        )
        if item.client_id is not None:
            self.hub.send("executing", {"node": None, "prompt_id": item.prompt_id}, item.client_id)
        self.hub.context_prompt_id = None
        self.records.append(ExecutionRecord(item.prompt_id, started_at, time.time(), outcome, run.executed))

    # --- helpers for _PromptRun --------------------------------------------------------------------

    async def node_started(self, prompt_id: str, node_id: str) -> None:
        if not (self.behaviour.kill_on_execute or self._on_node_start):
            return
        await self.hub.drain()  # let the client see `executing` before the server dies
        if self._on_node_start is not None:
            self._on_node_start(prompt_id, node_id)
        if self.behaviour.kill_on_execute:
            self._kill()
            await asyncio.sleep(0)  # the kill cancels this task here


class _PromptRun:
    """State of one prompt's execution: messages for the history, executed nodes, UI outputs."""

    def __init__(self, executor: Executor, item: QueueItem) -> None:
        self.ex = executor
        self.item = item
        self.prompt = item.prompt
        self.client = item.client_id
        self.messages: list[list[Any]] = []
        self.executed: list[str] = []
        self.ui_outputs: dict[str, Any] = {}
        self.meta: dict[str, Any] = {}
        self.progress = ProgressRegistry(item.prompt_id, self._send_progress_state)
        self.keys: dict[str, str] = {}

    def add_message(self, event: str, data: dict[str, Any], *, broadcast: bool) -> None:
        data = {**data, "timestamp": now_ms()}
        self.messages.append([event, data])
        if self.client is not None or broadcast:
            self.ex.hub.send(event, data, self.client)

    def _send_progress_state(self, data: dict[str, Any]) -> None:
        self.ex.hub.send("progress_state", data, self.client)

    def cached(self, node_id: str) -> CacheEntry | None:
        return self.ex.cache.get(self.keys[node_id])

    async def execute(self) -> Outcome:
        prompt_id = self.item.prompt_id
        self.add_message("execution_start", {"prompt_id": prompt_id}, broadcast=False)
        self.keys = NodeCache.keys_for(self.prompt, self.ex.folders)
        if not self.ex.profile.cache_keeps_other_prompts:
            self.ex.cache.keep_only(set(self.keys.values()))
        cached_nodes = [node_id for node_id in self.prompt if self.cached(node_id) is not None]
        self.add_message("execution_cached", {"nodes": cached_nodes, "prompt_id": prompt_id}, broadcast=False)

        order = ExecutionList(
            self.prompt,
            lambda n: NODE_CLASSES[self._class_type(n)].OUTPUT_NODE,
            lambda n: self.cached(n) is not None,
        )
        for output in self.item.outputs:
            order.add_node(output)
        outcome: Outcome = "success"
        try:
            while not order.is_empty():
                try:
                    node_id = order.next_node()
                except DependencyCycleError as ex:
                    raise _NodeFailure(self.item.outputs[0], ex, {}) from ex
                await self._run_node(node_id)
                order.complete(node_id)
        except _NodeFailure as failure:
            outcome = self._report_failure(failure)
        else:
            self.add_message("execution_success", {"prompt_id": prompt_id}, broadcast=False)
        self._collect_ui()
        return outcome

    def _class_type(self, node_id: str) -> str:
        return str(self.prompt[node_id]["class_type"])

    async def _run_node(self, node_id: str) -> None:
        prompt_id = self.item.prompt_id
        entry = self.cached(node_id)
        if entry is not None:
            # A cached output node: re-send its first run's UI output, no `executing` (transcript 12).
            if self.client is not None:
                output = self._shown(entry.ui["output"]) if entry.ui else None
                self.ex.hub.send(
                    "executed",
                    {"node": node_id, "display_node": node_id, "output": output, "prompt_id": prompt_id},
                    self.client,
                )
            self.progress.finish(node_id)
            return

        cls = NODE_CLASSES[self._class_type(node_id)]
        self.progress.start(node_id)
        if self.client is not None:
            self.ex.last_node_id = node_id
            self.ex.hub.send(
                "executing", {"node": node_id, "display_node": node_id, "prompt_id": prompt_id}, self.client
            )
        await self.ex.node_started(prompt_id, node_id)
        inputs = self._inputs_for(node_id, cls.input_types(self.ex.folders))
        try:
            # ComfyUI checks for an interrupt as a node starts: an interrupt during the previous
            # node lands here, after this node's `executing` (transcript 11).
            self.ex.interrupts.check()
            context = NodeContext(
                node_id=node_id,
                item=self.item,
                folders=self.ex.folders,
                behaviour=self.ex.behaviour,
                hub=self.ex.hub,
                progress=self.progress,
                interrupts=self.ex.interrupts,
                browser=self.ex.browser,
                videos=self.ex.videos,
            )
            await self._load_models(node_id, inputs)
            self._maybe_run_out_of_memory(node_id)
            result: NodeResult = await cls().run(context, **inputs)
            if self.ex.behaviour.uninterruptible:
                await asyncio.sleep(self.ex.behaviour.node_delay_s)
            else:
                await self.ex.interrupts.sleep(self.ex.behaviour.node_delay_s)
        except Exception as ex:  # any node failure becomes an execution_error
            raise _NodeFailure(node_id, ex, inputs) from ex

        ui = None
        if result.ui:
            output = result.ui
            if self.ex.profile.output_metadata:
                output = with_media_metadata(output, self.ex.folders, self.ex.videos)
            meta = {"node_id": node_id, "display_node": node_id, "parent_node": None, "real_node_id": node_id}
            ui = {"output": output, "meta": meta}
            if self.client is not None:
                shown = self._shown(output)
                self.ex.hub.send(
                    "executed",
                    {"node": node_id, "display_node": node_id, "output": shown, "prompt_id": prompt_id},
                    self.client,
                )
        self.ex.cache.put(self.keys[node_id], CacheEntry(result.outputs, ui))
        self.progress.finish(node_id)
        self.executed.append(node_id)

    def _shown(self, output: dict[str, Any]) -> dict[str, Any]:
        """A UI output as `executed` and history show it: with asset ids when the assets system is on."""
        return self.ex.assets.tag_outputs(output) if self.ex.profile.assets else output

    async def _load_models(self, node_id: str, inputs: dict[str, Any]) -> None:
        """Pay `model_load_delay_s` once per model file, the first time any node uses it."""
        behaviour = self.ex.behaviour
        for value in map(_model_file, inputs.values()):
            is_model = value is not None and value.lower().endswith(_MODEL_SUFFIXES)
            if value is not None and is_model and value not in self.ex.loaded_models:
                activity = behaviour.loading_activity and self.ex.profile.accepts_activity
                if activity:
                    self.progress.set_activity(node_id, "loading")
                await self.ex.interrupts.sleep(behaviour.model_load_delay_s)
                if activity:
                    self.progress.set_activity(node_id, None)
                self.ex.loaded_models.add(value)

    def _maybe_run_out_of_memory(self, node_id: str) -> None:
        if self.ex.behaviour.out_of_memory_class == self._class_type(node_id):
            self.ex.behaviour.out_of_memory_class = None  # once, like a real OOM
            raise OutOfMemoryError(_OOM_MESSAGE)

    def _inputs_for(self, node_id: str, types: dict[str, dict[str, Any]]) -> dict[str, Any]:
        declared = {**types.get("required", {}), **types.get("optional", {})}
        values: dict[str, Any] = {}
        for name, value in self.prompt[node_id]["inputs"].items():
            if name not in declared:
                continue
            if is_link(value):
                source = self.cached(value[0])
                if source is None:
                    continue
                values[name] = source.outputs[value[1]]
            else:
                values[name] = value
        return values

    def _hidden_inputs(self, node_id: str) -> dict[str, Any]:
        hidden = NODE_CLASSES[self._class_type(node_id)].input_types(self.ex.folders).get("hidden", {})
        sources = {
            "PROMPT": self.prompt,
            "EXTRA_PNGINFO": self.item.extra_data.get("extra_pnginfo"),
            "UNIQUE_ID": node_id,
            # The sensitive slot a newer ComfyUI keeps them in, else extra_data (0.3.64).
            "API_KEY_COMFY_ORG": self.item.sensitive.get("api_key_comfy_org")
            or self.item.extra_data.get("api_key_comfy_org"),
            "AUTH_TOKEN_COMFY_ORG": self.item.sensitive.get("auth_token_comfy_org")
            or self.item.extra_data.get("auth_token_comfy_org"),
        }
        return {name: sources.get(kind) for name, kind in hidden.items()}

    def _report_failure(self, failure: _NodeFailure) -> Outcome:
        node_id = failure.node_id
        base = {
            "prompt_id": self.item.prompt_id,
            "node_id": node_id,
            "node_type": self._class_type(node_id),
            "executed": list(self.executed),
        }
        if isinstance(failure.error, InterruptProcessing):
            self.add_message("execution_interrupted", base, broadcast=True)
            return "interrupted"
        error = failure.error
        # ComfyUI adds its tips to an out-of-memory error's message and unloads every model
        # ("Got an OOM, unloading all loaded models."), in 0.3.64 and today.
        tips = OOM_TIPS if isinstance(error, OutOfMemoryError) else ""
        if tips:  # the node cache stays; the weights behind it must be loaded again
            self.ex.loaded_models.clear()
        inputs = {**failure.inputs, **self._hidden_inputs(node_id)}
        self.add_message(
            "execution_error",
            {
                **base,
                "exception_message": f"{error}\n{tips}",
                "exception_type": full_type_name(type(error)),
                "traceback": traceback.format_tb(error.__traceback__),
                "current_inputs": {name: [_format_value(value)] for name, value in inputs.items()},
                "current_outputs": list(self.prompt),
            },
            broadcast=False,
        )
        return "error"

    def _collect_ui(self) -> None:
        for node_id in self.prompt:
            entry = self.cached(node_id)
            if entry is not None and entry.ui is not None:
                self.ui_outputs[node_id] = self._shown(entry.ui["output"])
                self.meta[node_id] = entry.ui["meta"]


def _model_file(value: Any) -> str | None:
    """The model file an input names: a file name, or a loaded MODEL/CLIP/VAE/upscale model (whose
    weights ComfyUI moves back to the GPU after they were unloaded, e.g. after an OOM)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (ModelHandle, UpscaleModel)):
        return value.name
    return None


def _format_value(value: Any) -> Any:
    if value is None or isinstance(value, (int, float, bool, str)):
        return value
    return str(value)
