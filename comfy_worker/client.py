"""A small typed client for RunPod serverless endpoints, real or local.

    client = EndpointClient.from_env()  # RUNPOD_API_KEY, RUNPOD_ENDPOINT_ID, RUNPOD_ENDPOINT_BASE_URL
    job_id = client.run({"workflow": workflow})
    final = client.wait(job_id, on_progress=print)
    if final.ok:
        client.save_outputs(final.output, Path("outputs"))
    else:
        print(final.error)                         # "WORKFLOW_INVALID: node 4 (...) ..."

Unlike ``runpod.Endpoint`` it surfaces the job's error text, treats CANCELLED and TIMED_OUT as
final, and retries 429 and 5xx with backoff (honouring Retry-After).
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import requests
import urllib3

__all__ = [
    "DEFAULT_BASE_URL",
    "REQUEST_LIMITS",
    "EndpointClient",
    "EndpointError",
    "JobStatus",
    "file_input",
    "url_input",
]

DEFAULT_BASE_URL = "https://api.runpod.ai/v2"
_MB = 1024 * 1024
# RunPod refuses larger request bodies (HTTP 413), but only after receiving all of them.
REQUEST_LIMITS = {"/run": 10 * _MB, "/runsync": 20 * _MB}
FINAL_STATUSES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"})
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


def file_input(path: Path, *, name: str | None = None) -> dict[str, str]:
    """An ``input.images`` entry carrying a local file as base64 (fits RunPod's 10 MB /run limit)."""
    return {"name": name or path.name, "image": base64.b64encode(path.read_bytes()).decode("ascii")}


def url_input(name: str, url: str, *, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """An ``input.images`` (or ``input.files``) entry the worker downloads itself.

    ``url`` is http(s) (a presigned URL works as is) or ``s3://bucket/key`` (read with the job's
    s3Config or the endpoint's bucket); ``headers`` (e.g. Authorization) go only to that URL's host.
    """
    entry: dict[str, Any] = {"name": name, "url": url}
    if headers:
        entry["headers"] = dict(headers)
    return entry


class EndpointError(Exception):
    """A request to the endpoint failed; the message says what to check."""


@dataclass(frozen=True)
class JobStatus:
    id: str
    status: str
    output: Any = None
    error: str | None = None
    delay_ms: int | None = None
    execution_ms: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def ok(self) -> bool:
        return self.status == "COMPLETED"

    @property
    def progress(self) -> dict[str, Any] | None:
        """The worker's latest progress update while the job runs."""
        if self.status == "IN_PROGRESS" and isinstance(self.output, dict) and "stage" in self.output:
            return self.output
        return None

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> JobStatus:
        error = body.get("error")
        return cls(
            id=str(body.get("id", "")),
            status=str(body.get("status", "UNKNOWN")),
            output=body.get("output"),
            error=error if isinstance(error, str) or error is None else str(error),
            delay_ms=body.get("delayTime"),
            execution_ms=body.get("executionTime"),
            raw=dict(body),
        )


class EndpointClient:
    def __init__(
        self,
        endpoint_id: str,
        api_key: str | None,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout_s: float = 30.0,
        retries: int = 4,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not endpoint_id:
            raise EndpointError("no endpoint id: pass --endpoint or set RUNPOD_ENDPOINT_ID")
        self.endpoint_id = endpoint_id
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._timeout_s = timeout_s
        self._retries = retries
        self._session = session or requests.Session()
        self._sleep = sleep

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> EndpointClient:
        env = os.environ if environ is None else environ
        return cls(
            overrides.pop("endpoint_id", None) or env.get("RUNPOD_ENDPOINT_ID", ""),
            overrides.pop("api_key", None) or env.get("RUNPOD_API_KEY") or None,
            # The runpod SDK's name; RUNPOD_BASE_URL (the studio app's older name) also works.
            base_url=overrides.pop("base_url", None)
            or env.get("RUNPOD_ENDPOINT_BASE_URL")
            or env.get("RUNPOD_BASE_URL")
            or DEFAULT_BASE_URL,
            **overrides,
        )

    @property
    def url(self) -> str:
        return f"{self.base_url}/{self.endpoint_id}"

    def run(self, job_input: Mapping[str, Any], **fields: Any) -> str:
        """Submit asynchronously; return the job id. ``fields``: webhook, policy, s3Config."""
        data = _within_limit("/run", {"input": dict(job_input), **_present(fields)})
        body = self._request("POST", "/run", data=data, headers=_JSON, idempotent=False)
        return str(body["id"])

    def runsync(
        self, job_input: Mapping[str, Any], *, wait_ms: int | None = None, **fields: Any
    ) -> JobStatus:
        params = {"wait": wait_ms} if wait_ms is not None else None
        timeout = (wait_ms or 90_000) / 1000 + self._timeout_s
        body = self._request(
            "POST",
            "/runsync",
            idempotent=False,
            data=_within_limit("/runsync", {"input": dict(job_input), **_present(fields)}),
            headers=_JSON,
            params=params,
            timeout=timeout,
        )
        return JobStatus.from_body(body)

    def status(self, job_id: str) -> JobStatus:
        return JobStatus.from_body(self._request("GET", f"/status/{job_id}"))

    def cancel(self, job_id: str) -> JobStatus:
        return JobStatus.from_body(self._request("POST", f"/cancel/{job_id}"))

    def health(self) -> dict[str, Any]:
        body: dict[str, Any] = self._request("GET", "/health")
        return body

    def wait(
        self,
        job_id: str,
        *,
        timeout_s: float | None = None,
        on_progress: Callable[[JobStatus], None] | None = None,
        poll_s: float = 0.25,
        max_poll_s: float = 3.0,
    ) -> JobStatus:
        """Poll until the job is final (COMPLETED, FAILED, CANCELLED, TIMED_OUT), backing off."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        delay = poll_s
        last_seen: tuple[str, Any] | None = None
        while True:
            status = self.status(job_id)
            if status.final:
                return status
            seen = (status.status, status.output)  # IN_QUEUE -> IN_PROGRESS is news too
            if seen != last_seen:
                if on_progress is not None:
                    on_progress(status)
                last_seen, delay = seen, poll_s  # something moved: look again soon
            if deadline is not None and time.monotonic() + delay > deadline:
                raise EndpointError(f"job {job_id} is still {status.status} after {timeout_s:g} s")
            self._sleep(delay)
            delay = min(delay * 1.5, max_poll_s)

    def save_outputs(self, output: Mapping[str, Any], folder: Path) -> list[Path]:
        """Write every image, file and text of a worker result to ``folder``.

        Files keep their name and ComfyUI subfolder (``folder/<subfolder>/<name>``; a name taken
        already gets `` (1)``); texts go to ``text_node<id>.txt``. Each file is written to a
        temporary name and renamed when complete, so a failed download never leaves a partial file
        that looks like an output.
        """
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EndpointError(f"cannot create the output folder {folder}: {exc.strerror}") from None
        saved = []
        for entry in [*output.get("images", []), *output.get("files", [])]:
            name = PurePosixPath(str(entry.get("filename") or "output")).name
            relative = _safe_subfolder(entry.get("subfolder")) / name
            saved.append(self._save(folder, relative, functools.partial(self._write_entry, entry, name)))
        for index, text in enumerate(output.get("text", [])):
            node = str(text.get("node_id") or "")
            name = f"text_node{node}.txt" if node.replace("_", "").isalnum() else f"text_{index + 1}.txt"
            content = str(text.get("text", ""))
            saved.append(self._save(folder, Path(name), functools.partial(_write_text, content)))
        return saved

    def _save(self, folder: Path, relative: Path, write: Callable[[Path], None]) -> Path:
        target = _unique(folder / relative)
        partial = target.with_name(f".{target.name}.part")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            write(partial)
            partial.replace(target)
        except (OSError, requests.RequestException, binascii.Error, ValueError) as exc:
            partial.unlink(missing_ok=True)
            raise EndpointError(f"could not save {relative}: {exc}") from None
        return target

    def _write_entry(self, entry: Mapping[str, Any], name: str, path: Path) -> None:
        if entry.get("type") == "s3_url":
            with self._session.get(entry["data"], stream=True, timeout=self._timeout_s) as response:
                if response.status_code != 200:
                    raise EndpointError(f"download of {name} failed with HTTP {response.status_code}")
                with path.open("wb") as sink:
                    for chunk in response.iter_content(1024 * 1024):
                        sink.write(chunk)
        else:
            path.write_bytes(base64.b64decode(entry["data"], validate=True))

    def _request(
        self, method: str, path: str, *, timeout: float | None = None, idempotent: bool = True, **kwargs: Any
    ) -> Any:
        """One call with retries: 429/5xx always (nothing was done), a broken connection only when
        the request never left (connect failure) or repeating it is harmless (not run/runsync)."""
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        headers.update(kwargs.pop("headers", {}))
        url = f"{self.url}{path}"
        for attempt in range(self._retries + 1):
            try:
                response = self._session.request(
                    method, url, headers=headers, timeout=timeout or self._timeout_s, **kwargs
                )
            except requests.ConnectionError as exc:
                if attempt < self._retries and (idempotent or _never_sent(exc)):
                    self._sleep(_backoff(attempt, None))
                    continue
                raise EndpointError(
                    f"cannot reach {self.base_url}: is the endpoint running? "
                    "(set RUNPOD_ENDPOINT_BASE_URL for a local one)"
                ) from None
            except requests.Timeout:
                if idempotent and attempt < self._retries:  # one slow poll must not end wait()
                    self._sleep(_backoff(attempt, None))
                    continue
                raise EndpointError(
                    f"{method} {path} got no answer within {timeout or self._timeout_s:g} s"
                ) from None
            if response.status_code in _RETRY_STATUSES and attempt < self._retries:
                self._sleep(_backoff(attempt, response.headers.get("Retry-After")))
                continue
            return _body(response, self.endpoint_id)
        raise AssertionError("unreachable")


def _body(response: requests.Response, endpoint_id: str) -> Any:
    if response.status_code == 401:
        raise EndpointError("the API key was refused (HTTP 401): check RUNPOD_API_KEY or --api-key")
    if response.status_code == 404:
        detail = _error_text(response)
        raise EndpointError(
            f"not found (HTTP 404) at endpoint {endpoint_id!r}: {detail or 'check RUNPOD_ENDPOINT_ID'}"
        )
    if response.status_code >= 400:
        raise EndpointError(f"the endpoint answered HTTP {response.status_code}: {_error_text(response)}")
    try:
        return response.json()
    except ValueError:
        raise EndpointError(
            f"the endpoint answered with something that is not JSON: {response.text[:200]!r}"
        ) from None


def _error_text(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return str(body.get("error", body)) if isinstance(body, dict) else str(body)[:200]


def _never_sent(exc: requests.ConnectionError) -> bool:
    """Whether the connection failed before the request was sent (so a retry cannot duplicate it)."""
    # requests wraps urllib3's MaxRetryError, whose .reason is the NewConnectionError.
    seen: list[BaseException] = [exc]
    while seen:
        cause = seen.pop()
        if isinstance(cause, urllib3.exceptions.NewConnectionError):
            return True
        nested = [cause.__cause__, cause.__context__, getattr(cause, "reason", None), *cause.args[:1]]
        seen.extend(n for n in nested if isinstance(n, BaseException) and n is not cause)
    return False


def _backoff(attempt: int, retry_after: str | None) -> float:
    if retry_after is not None:
        try:
            return min(float(retry_after), 30.0)
        except ValueError:
            pass  # an HTTP date: fall back to our own backoff
    return min(0.5 * 2.0**attempt, 8.0)


_JSON = {"Content-Type": "application/json"}


def _within_limit(path: str, body: Mapping[str, Any]) -> bytes:
    """The request body, or an error saying how far over RunPod's limit for ``path`` it is."""
    data = json.dumps(body).encode("utf-8")
    limit = REQUEST_LIMITS[path]
    if len(data) > limit:
        other = " or use runsync (20 MB)" if path == "/run" else ""
        raise EndpointError(
            f"the job request is {len(data) / _MB:.1f} MB, over RunPod's {limit // _MB} MB limit for "
            f"{path}: make the input images smaller{other}; nothing was sent"
        )
    return data


def _present(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


def _write_text(content: str, path: Path) -> None:
    path.write_text(content, encoding="utf-8")


def _safe_subfolder(subfolder: Any) -> Path:
    """ComfyUI's subfolder as a relative path inside ``folder``; anything that would leave it is dropped."""
    parts = [p for p in PurePosixPath(str(subfolder or "")).parts if p not in ("", ".", "..", "/")]
    return Path(*parts) if parts else Path()


def _unique(path: Path) -> Path:
    if not path.exists():
        return path
    for index in range(1, 10_000):
        candidate = path.with_name(f"{path.stem} ({index}){path.suffix}")
        if not candidate.exists():
            return candidate
    raise EndpointError(f"too many files named like {path.name} in {path.parent}")
