"""The one list of what a job leaves behind, removed when the job ends, whatever happened.

Each step adds to it the moment it creates something (before the await that might be cancelled),
so a timeout or cancel mid-step still cleans up: uploaded inputs, files ComfyUI wrote, the job's
temp folder. The request logs ComfyUI's API nodes write into temp/api_logs during the job hold the
job's Comfy.org key (X-API-KEY): they are removed whatever COMFY_CLEANUP says.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from .comfy.folders import ComfyFolders
from .errors import WorkdirUnavailable

__all__ = ["JobCleanup"]

logger = logging.getLogger(__name__)


class JobCleanup:
    """What to remove at the end of one job. ``enabled=False`` (COMFY_CLEANUP) keeps ComfyUI's files."""

    def __init__(self, folders: ComfyFolders, *, enabled: bool) -> None:
        self._folders = folders
        self._enabled = enabled
        self.inputs: list[str] = []  # names in ComfyUI's input/
        # (folder type, relative path) ComfyUI wrote, and the end of the prompt that wrote it
        self.outputs: list[tuple[str, str, int | None]] = []
        self._workdir: Path | None = None
        self._api_logs_before = folders.snapshot_api_logs()

    def make_workdir(self) -> Path:
        """The job's own temp folder; a full or read-only disk becomes WORKDIR_UNAVAILABLE."""
        try:
            self._workdir = Path(tempfile.mkdtemp(prefix="comfy-job-"))
        except OSError as exc:
            raise WorkdirUnavailable(parent=tempfile.gettempdir(), reason=exc.strerror or str(exc)) from exc
        return self._workdir

    def add_input(self, name: str) -> None:
        if name not in self.inputs:
            self.inputs.append(name)

    def add_outputs(self, files: list[tuple[str, str]], *, written_by_ns: int | None = None) -> None:
        """Files a prompt wrote; with ``written_by_ns`` (its end), one a later prompt has written
        again by the time of the cleanup is left to that prompt's job."""
        self.outputs.extend((folder_type, relpath, written_by_ns) for folder_type, relpath in files)

    def run(self) -> None:
        """Remove everything listed, once; never raises (a file already gone is fine)."""
        inputs, outputs, workdir = self.inputs, self.outputs, self._workdir
        self.inputs, self.outputs, self._workdir = [], [], None
        if self._enabled:
            for name in inputs:
                self._folders.remove("input", name)
            for folder_type, relpath, written_by_ns in outputs:
                self._folders.remove(folder_type, relpath, written_by_ns=written_by_ns)
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
        removed = self._folders.remove_api_logs_since(self._api_logs_before)
        if removed:
            logger.info(
                "removed %d API-node request log(s) from temp/api_logs (they hold the API key)", removed
            )
