"""Find the folder of a running ComfyUI (``comfy-worker serve`` without ``--comfyui-path``).

The worker needs ComfyUI's folder to collect outputs that nodes write without reporting them (a
SharpPredict ``.ply``) and to clean up inputs and outputs after each job; without it both silently
stop working. So the endpoint asks the running ComfyUI where it lives (``/internal/folder_paths``,
whose ``custom_nodes`` entry is ``<ComfyUI>/custom_nodes``) and checks that folder on this machine,
or refuses to start, saying what to pass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests

__all__ = ["ComfyFolderUnknown", "find_comfyui_path"]

# ComfyUI flags that move input/output/temp away from <ComfyUI>/input|output|temp.
_MOVED_FOLDER_FLAGS = ("--output-directory", "--input-directory", "--temp-directory", "--base-directory")
_HINT = "pass --comfyui-path (or set COMFYUI_PATH) to the folder that holds ComfyUI's input/ and output/"


class ComfyFolderUnknown(RuntimeError):
    """ComfyUI's folder could not be found; the message says why and what to pass."""


def find_comfyui_path(host: str, *, timeout_s: float = 5.0) -> Path:
    base = f"http://{host}"
    try:
        paths = _get(f"{base}/internal/folder_paths", timeout_s)
        stats = _get(f"{base}/system_stats", timeout_s)
    except requests.ConnectionError:
        raise ComfyFolderUnknown(
            f"ComfyUI is not reachable at {host}, so its folder cannot be found: "
            f"start ComfyUI first, or {_HINT}"
        ) from None
    except (requests.RequestException, ValueError) as exc:
        raise ComfyFolderUnknown(
            f"the ComfyUI at {host} did not say where its folder is ({exc}); {_HINT}"
        ) from None
    custom_nodes = paths.get("custom_nodes") if isinstance(paths, dict) else None
    first = custom_nodes[0] if isinstance(custom_nodes, list) and custom_nodes else None
    if not isinstance(first, str):
        raise ComfyFolderUnknown(f"the ComfyUI at {host} did not list its custom_nodes folder; {_HINT}")
    argv = stats.get("system", {}).get("argv", []) if isinstance(stats, dict) else []
    moved = sorted(
        {a.split("=")[0] for a in argv if isinstance(a, str) and a.split("=")[0] in _MOVED_FOLDER_FLAGS}
    )
    if moved:
        raise ComfyFolderUnknown(
            f"the ComfyUI at {host} runs with {', '.join(moved)}, so its files are not all under one "
            f"folder; {_HINT}"
        )
    folder = Path(first).parent
    missing = [name for name in ("input", "output") if not (folder / name).is_dir()]
    if missing:
        raise ComfyFolderUnknown(
            f"the ComfyUI at {host} says it lives in {folder}, but {folder} has no {' or '.join(missing)}/ "
            f"folder on this machine (is ComfyUI in a container or on another machine?); {_HINT}"
        )
    return folder


def _get(url: str, timeout_s: float) -> Any:
    response = requests.get(url, timeout=timeout_s)
    if response.status_code != 200:
        raise ValueError(f"GET {url.split('/', 3)[-1]} answered HTTP {response.status_code}")
    return response.json()
