"""Checks a booted image from inside it; scripts/test-image.sh runs this in the container.

    python image_probe.py serverless --workflow /tmp/probe/simple_test.json
    python image_probe.py compute --jupyter-token TOKEN

serverless: the handler's local API answers (boot time measured from --started-at), a workflow
through /runsync completes with an image, every node class the manifest's installed nodes must
register is in ComfyUI's /object_info, and ComfyUI's log has no IMPORT FAILED.
compute: ComfyUI answers and listens on 0.0.0.0, JupyterLab refuses a request without the token
(403) and accepts one with it, ComfyUI-Manager's routes answer, and the node classes are there.

Stdlib only (it runs with whatever Python the image has). Prints one line per check, `ok` or
`FAIL`, then a `probe-result {json}` line for the caller; exits 1 when a check failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

READY_POLL_S = 0.2


class Probe:
    """Runs checks, remembers the failures and the measurements."""

    def __init__(self) -> None:
        self.failures: list[str] = []
        self.facts: dict[str, Any] = {}

    def check(self, name: str, ok: bool, detail: str = "", *, shown: str = "") -> bool:
        """Print `name` with `shown` when it holds, with `detail` (what is wrong) when it does not."""
        said = shown if ok else detail
        print(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + said if said else ''}", flush=True)
        if not ok:
            self.failures.append(f"{name}: {detail}")
        return ok


def http(
    method: str, url: str, body: Any = None, *, headers: dict[str, str] | None = None, timeout_s: float = 30
) -> tuple[int, bytes]:
    """One request; (status, body), with status 0 when nothing answered."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (OSError, ValueError):
        return 0, b""


def wait_for(url: str, deadline: float, accept: Callable[[int], bool] = lambda s: s == 200) -> bool:
    while time.time() < deadline:
        status, _ = http("GET", url, timeout_s=5)
        if accept(status):
            return True
        time.sleep(READY_POLL_S)
    return False


def required_classes(manifest: Path, mode: str, groups: str) -> dict[str, list[str]]:
    """{node name: classes it must register} for the nodes this image installed."""
    data = tomllib.loads(manifest.read_text(encoding="utf-8"))
    wanted = {g.strip().upper() for g in groups.replace(" ", ",").split(",") if g.strip()}
    out = {}
    for node in data.get("nodes", []):
        if mode not in node.get("modes", ["serverless", "compute"]):
            continue
        if "ALL" not in wanted and node["group"] not in wanted:
            continue
        out[node["name"]] = list(node.get("classes", []))
    return out


def check_nodes(probe: Probe, comfy: str, manifest: Path, mode: str, groups: str, log: Path) -> None:
    status, body = http("GET", f"{comfy}/object_info", timeout_s=60)
    if not probe.check("ComfyUI /object_info answers", status == 200, f"status {status}"):
        return
    registered = set(json.loads(body))
    probe.facts["object_info_classes"] = len(registered)
    for node, classes in required_classes(manifest, mode, groups).items():
        missing = [c for c in classes if c not in registered]
        probe.check(
            f"{node} registers {', '.join(classes) or 'no node class'}", not missing, f"missing {missing}"
        )
    text = log.read_text(encoding="utf-8", errors="replace") if log.is_file() else ""
    failed = [line.strip() for line in text.splitlines() if "IMPORT FAILED" in line]
    probe.check("no custom node failed to import", not failed, "; ".join(failed))


def serverless(args: argparse.Namespace, probe: Probe) -> None:
    deadline = args.started_at + args.timeout_s
    ready = wait_for(f"{args.api}/", deadline)
    if not probe.check(
        "handler's local API answers", ready, f"nothing on {args.api} after {args.timeout_s:.0f} s"
    ):
        return
    probe.facts["boot_s"] = round(time.time() - args.started_at, 1)
    print(f"     boot (container start -> handler accepting jobs): {probe.facts['boot_s']} s", flush=True)
    workflow = json.loads(Path(args.workflow).read_text(encoding="utf-8"))
    started = time.time()
    status, body = http("POST", f"{args.api}/runsync", {"input": {"workflow": workflow}}, timeout_s=300)
    probe.facts["runsync_s"] = round(time.time() - started, 2)
    result = json.loads(body) if status == 200 else {}
    output = result.get("output") or {}
    images = output.get("images") or []
    probe.check(
        f"{Path(args.workflow).name} through /runsync",
        result.get("status") == "COMPLETED" and bool(images),
        f"HTTP {status}, status {result.get('status')}, {len(images)} image(s), {str(result)[:300]}",
        shown=f"{result.get('status')}, {len(images)} image(s) in {probe.facts['runsync_s']} s",
    )
    check_nodes(probe, args.comfy, args.manifest, "serverless", args.node_groups, args.comfy_log)


def compute(args: argparse.Namespace, probe: Probe) -> None:
    deadline = args.started_at + args.timeout_s
    ready = wait_for(f"{args.comfy}/system_stats", deadline)
    if not probe.check("ComfyUI answers", ready, f"nothing on {args.comfy} after {args.timeout_s:.0f} s"):
        return
    probe.facts["boot_s"] = round(time.time() - args.started_at, 1)
    print(f"     boot (container start -> ComfyUI ready): {probe.facts['boot_s']} s", flush=True)
    listening = listen_addresses(args.comfy_port)
    probe.check(
        f"ComfyUI listens on 0.0.0.0:{args.comfy_port}", "0.0.0.0" in listening, f"listening on {listening}"
    )
    jupyter_up = wait_for(f"{args.jupyter}/api", deadline)
    if probe.check("JupyterLab answers", jupyter_up, f"nothing on {args.jupyter}"):
        status, _ = http("GET", f"{args.jupyter}/api/contents")
        probe.check(
            "JupyterLab refuses a request without the token", status == 403, f"status {status}", shown="403"
        )
        status, _ = http(
            "GET", f"{args.jupyter}/api/contents", headers={"Authorization": f"token {args.jupyter_token}"}
        )
        probe.check("JupyterLab accepts the token", status == 200, f"status {status}", shown="200")
    status, body = http("GET", f"{args.comfy}/manager/version")
    probe.check(
        "ComfyUI-Manager answers",
        status == 200,
        f"GET /manager/version: {status} {body[:80]!r}",
        shown=body[:40].decode("utf-8", "replace"),
    )
    check_nodes(probe, args.comfy, args.manifest, "compute", args.node_groups, args.comfy_log)


def listen_addresses(port: int) -> list[str]:
    """The IPv4 addresses something listens on at `port`, from /proc/net/tcp (no tools needed)."""
    found = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, _, port_hex = local.partition(":")
        if state == "0A" and int(port_hex, 16) == port:  # 0A = LISTEN
            octets = [str(int(address[i : i + 2], 16)) for i in (6, 4, 2, 0)]
            found.append(".".join(octets))
    return found


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("mode", choices=["serverless", "compute"])
    p.add_argument("--started-at", type=float, default=time.time(), help="container start (epoch s)")
    p.add_argument("--timeout-s", type=float, default=600)
    p.add_argument("--api", default="http://127.0.0.1:8000")
    p.add_argument("--comfy-port", type=int, default=8188)
    p.add_argument("--jupyter", default="http://127.0.0.1:8189")
    p.add_argument("--jupyter-token", default="")
    p.add_argument("--workflow", default="/tmp/probe/simple_test.json")
    p.add_argument("--manifest", type=Path, default=Path("/opt/worker/manifest.toml"))
    p.add_argument("--node-groups", default="ALL")
    p.add_argument("--comfy-log", type=Path, default=Path("/tmp/comfyui.log"))
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.comfy = f"http://127.0.0.1:{args.comfy_port}"
    probe = Probe()
    (serverless if args.mode == "serverless" else compute)(args, probe)
    print(
        "probe-result " + json.dumps({"mode": args.mode, "failures": probe.failures, **probe.facts}),
        flush=True,
    )
    return 1 if probe.failures else 0


if __name__ == "__main__":
    sys.exit(main())
