"""comfy_testserver: a protocol-faithful fake ComfyUI for tests, benchmarks and demos.

Built from the transcripts in `shared/comfyui-protocol`: same routes, status codes, bodies, WebSocket
message order and routing, validation errors, cache and queue semantics, with nodes that really
run on small Pillow images. `Behaviour` adds knobs for slowness and failure (delays, dropped or
silent sockets, a server that dies mid-job). It speaks ComfyUI 0.3.64 (the default) or, with
`profile="current"`, today's ComfyUI as read from its source: PROFILES.md lists the differences.

    from comfy_testserver import ComfyTestServer, Behaviour
    with ComfyTestServer(root=tmp_path, behaviour=Behaviour(node_delay_s=0.1)) as server:
        ...  # point the worker at server.address

`python -m comfy_testserver --root DIR` runs it in the foreground. `recorded/` holds the
transcripts it was built from (copies of shared/comfyui-protocol, with their README).

Modules: `harness` (ComfyTestServer), `behaviour`, `profiles`, `records`; `server`, `info_routes`,
`file_routes`, `job_routes` + `jobs` (HTTP), `hub` (WebSocket routing), `executor` + `node_context` +
`graph` + `cache` + `progress` + `prompt_queue` + `output_records` (running prompts), `validation`,
`object_info`, `folders`, `protocol`, and `nodes/` (the fake node classes).
"""

from __future__ import annotations

from .behaviour import Behaviour
from .harness import ComfyTestServer
from .nodes import NODE_CLASSES
from .profiles import PROFILES, Profile
from .records import ExecutionRecord, RecordedRequest

__all__ = [
    "NODE_CLASSES",
    "PROFILES",
    "Behaviour",
    "ComfyTestServer",
    "ExecutionRecord",
    "Profile",
    "RecordedRequest",
]
