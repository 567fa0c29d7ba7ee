"""Check a raw RunPod job input and turn it into a typed `JobRequest`. Pure, no I/O.

The accepted input is worker-comfyui's (``workflow``, ``images``, ``comfy_org_api_key``) plus
``timeout`` and ``include_temp``; every rejection names the field and says how to fix it.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .destination import Destination, DestinationError, build_destination
from .errors import JobInputError
from .media import SNIFF_BYTES, sniff_mime
from .values import InputImage, RemoteInput
from .workflow_limits import MAX_FILE_NAME_BYTES, check_workflow_limits

__all__ = [
    "ConvertOptions",
    "InputImage",
    "JobLimits",
    "JobRequest",
    "RemoteInput",
    "parse_job_input",
    "parse_s3_config",
    "resolve_mode",
    "upload_file_limit",
]

OUTPUT_MODES = ("base64", "s3", "auto")
SPLAT_FORMATS = ("spz", "splat")  # handler/splats.py
_S3_CONFIG_NAMES = {
    "endpoint_url": "s3Config.endpointUrl",
    "bucket": "s3Config.bucketName",
    "access_key_id": "s3Config.accessId",
    "secret_access_key": "s3Config.accessSecret",
}

MAX_TIMEOUT_S = 24 * 3600.0
_DATA_URI = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^,;]*)*?);base64,", re.I)
_BASE64_CHARS = re.compile(rb"^[A-Za-z0-9+/_-]*={0,2}$")
URL_SCHEMES = ("http", "https", "s3")
MAX_URL_CHARS = 8192
UPLOAD_FORM_BYTES = 4096  # multipart headers around one file in POST /upload/image
MAX_HEADER_COUNT = 32
# Headers the fetch itself sets: a job overriding them could confuse the connection pinning.
_RESERVED_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "upgrade", "te"}
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_API_FORMAT_HINT = (
    "in ComfyUI use Workflow > Export (API) (older menus: 'Save (API Format)') and send that file's "
    "content as input.workflow"
)


@dataclass(frozen=True)
class JobLimits:
    """Defaults and bounds that come from settings, not from the job."""

    max_input_bytes: int
    default_timeout_s: float
    default_api_key: str | None = field(default=None, repr=False)
    allowed_input_paths: tuple[str, ...] = ()  # COMFY_ALLOWED_INPUT_PATHS


@dataclass(frozen=True)
class ConvertOptions:
    """``input.convert``: what to turn outputs into on delivery (Gaussian-splat .ply only, for now)."""

    ply: str | None = None  # "spz" or "splat"
    keep_original: bool = False


@dataclass(frozen=True)
class JobRequest:
    """A validated job: what the rest of the pipeline works from."""

    workflow: dict[str, dict[str, Any]]
    images: tuple[InputImage, ...] = ()
    remote_inputs: tuple[RemoteInput, ...] = ()
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = 1800.0
    include_temp: bool = False
    output_mode: str | None = None  # None: s3 when a bucket is configured, else base64
    convert: ConvertOptions = field(default_factory=ConvertOptions)


def parse_job_input(raw: Any, limits: JobLimits) -> JobRequest:
    """Validate ``job["input"]`` (a dict or a JSON string of one); raise JobInputError."""
    data = _as_object(raw)
    workflow = _parse_workflow(data.get("workflow"))
    check_workflow_limits(workflow, allowed_paths=limits.allowed_input_paths)
    images, remote = _parse_inputs(data.get("images"), data.get("files"), limits.max_input_bytes)
    return JobRequest(
        workflow=workflow,
        images=images,
        remote_inputs=remote,
        api_key=_parse_api_key(data.get("comfy_org_api_key")) or limits.default_api_key,
        timeout_s=_parse_timeout(data.get("timeout"), limits.default_timeout_s),
        include_temp=_parse_flag(data.get("include_temp"), "include_temp"),
        output_mode=_parse_output_mode(data.get("output")),
        convert=_parse_convert(data.get("convert")),
    )


def parse_s3_config(raw: Any, *, defaults: Destination | None) -> Destination | None:
    """RunPod's per-request ``s3Config`` (next to ``input`` in the job), overriding BUCKET_* for one job.

    Prefix and URL lifetime still come from the environment; a public URL does not, since it
    belongs to the environment's bucket.
    """
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise JobInputError(
            's3Config must be an object like {"accessId", "accessSecret", "bucketName", '
            f'"endpointUrl"}}, got {_kind(raw)}'
        )
    fields = {}
    for key in ("accessId", "accessSecret", "bucketName", "endpointUrl"):
        value = raw.get(key)
        if value is not None and not isinstance(value, str):
            raise JobInputError(f"s3Config.{key} must be a string, got {_kind(value)}")
        fields[key] = value
    try:
        return build_destination(
            endpoint_url=fields["endpointUrl"],
            bucket=fields["bucketName"],
            access_key_id=fields["accessId"],
            secret_access_key=fields["accessSecret"],
            prefix=defaults.prefix if defaults else "",
            url_expiry_s=defaults.url_expiry_s if defaults else 24 * 3600,
            source="s3Config",
            names=_S3_CONFIG_NAMES,
        )
    except DestinationError as exc:
        raise JobInputError(f"s3Config: {exc}") from None


def resolve_mode(requested: str | None, *, has_destination: bool) -> str:
    """The job's ``output`` mode; omitted means s3 when a bucket is configured (as worker-comfyui)."""
    if requested is None:
        return "s3" if has_destination else "base64"
    if requested == "s3" and not has_destination:
        raise JobInputError(
            'input.output is "s3" but no bucket is configured: set BUCKET_ENDPOINT_URL, '
            "BUCKET_ACCESS_KEY_ID and BUCKET_SECRET_ACCESS_KEY on the endpoint, or send s3Config"
        )
    return requested


def _as_object(raw: Any) -> Mapping[str, Any]:
    if raw is None:
        raise JobInputError(
            'the job has no input; send {"input": {"workflow": {...}}} with your API-format workflow'
        )
    if isinstance(raw, str):
        raw = _loads(raw, "the job input")
    if not isinstance(raw, Mapping):
        raise JobInputError(
            f"the job input must be a JSON object with a 'workflow' key, got {_kind(raw)}; "
            'send {"input": {"workflow": {...}}}'
        )
    return raw


def _loads(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise JobInputError(f"{what} is a string but not valid JSON ({exc.msg} at {exc.pos})") from None
    except ValueError as exc:  # e.g. an integer over Python's 4300-digit conversion limit
        raise JobInputError(f"{what} is a string but not usable JSON: {str(exc)[:200]}") from None
    except RecursionError:
        raise JobInputError(f"{what} is a string of JSON nested too deeply to read; flatten it") from None


def _parse_workflow(value: Any) -> dict[str, dict[str, Any]]:
    if value is None:
        raise JobInputError(f"input.workflow is missing: {_API_FORMAT_HINT}")
    if isinstance(value, str):
        value = _loads(value, "input.workflow")
    if not isinstance(value, Mapping):
        raise JobInputError(
            f"input.workflow must be a JSON object of nodes, got {_kind(value)}; {_API_FORMAT_HINT}"
        )
    if "nodes" in value and "links" in value:
        raise JobInputError(
            f"input.workflow is a UI-format export (it has 'nodes' and 'links'), which ComfyUI's API "
            f"cannot run: {_API_FORMAT_HINT}"
        )
    if not value:
        raise JobInputError(f"input.workflow has no nodes: {_API_FORMAT_HINT}")
    workflow: dict[str, dict[str, Any]] = {}
    for node_id, node in value.items():
        where = f"input.workflow[{node_id!r}]"
        if not isinstance(node, Mapping):
            raise JobInputError(f"{where} must be an object with class_type and inputs, got {_kind(node)}")
        class_type = node.get("class_type")
        if not isinstance(class_type, str) or not class_type.strip():
            raise JobInputError(
                f'{where} has no class_type: every node needs one (e.g. "class_type": "SaveImage"); '
                f"{_API_FORMAT_HINT}"
            )
        inputs = node.get("inputs", {})
        if not isinstance(inputs, Mapping):
            raise JobInputError(f"{where}.inputs must be an object, got {_kind(inputs)}")
        workflow[str(node_id)] = {**node, "inputs": dict(inputs)}
    return workflow


def _parse_inputs(
    images: Any, files: Any, max_total_bytes: int
) -> tuple[tuple[InputImage, ...], tuple[RemoteInput, ...]]:
    """``images`` and ``files`` entries: base64 (``image``/``data``) or a URL (``url``)."""
    decoded: list[InputImage] = []
    remote: list[RemoteInput] = []
    seen: set[str] = set()
    total = 0
    for field_name, value in (("images", images), ("files", files)):
        if value is None:
            continue
        if not isinstance(value, list):
            raise JobInputError(
                f'input.{field_name} must be a list like [{{"name": "photo.png", "image": "<base64>"}}] '
                f'or [{{"name": "photo.png", "url": "https://..."}}], got {_kind(value)}'
            )
        for index, entry in enumerate(value):
            where = f"input.{field_name}[{index}]"
            if not isinstance(entry, Mapping):
                raise JobInputError(
                    f"{where} must be an object with 'name' and 'image' (base64) or 'url', got {_kind(entry)}"
                )
            name = _parse_name(entry.get("name"), where)
            if name in seen:
                raise JobInputError(f"{where}.name {name!r} is used twice; give every input a unique name")
            seen.add(name)
            payload_key = "data" if field_name == "files" and "data" in entry else "image"
            has_payload = entry.get(payload_key) is not None
            if entry.get("url") is not None:
                if has_payload:
                    raise JobInputError(
                        f"{where} ({name!r}) has both 'url' and '{payload_key}'; send one of them"
                    )
                kind = "image" if field_name == "images" else "file"
                remote.append(_parse_remote(entry, where, name, kind))
                continue
            if entry.get("headers") is not None:
                raise JobInputError(f"{where}.headers only applies to an entry with a 'url'")
            data = _decode_base64(entry.get(payload_key), f"{where}.{payload_key}", name)
            total += len(data)
            # ComfyUI's limit (--max-upload-size) counts the whole upload form, not just the file.
            if len(data) > upload_file_limit(max_total_bytes):
                raise JobInputError(
                    f"{where} ({name!r}) is {len(data)} bytes; one upload to ComfyUI must stay within "
                    f"{upload_file_limit(max_total_bytes)} bytes (COMFY_MAX_INPUT_BYTES less "
                    f"{UPLOAD_FORM_BYTES} for the upload form); send a smaller file, or raise both "
                    "COMFY_MAX_INPUT_BYTES and ComfyUI's limit (COMFY_ARGS=--max-upload-size <MB>)"
                )
            if total > max_total_bytes:
                raise JobInputError(
                    f"{where} ({name!r}) brings the decoded inputs to {total} bytes, over the "
                    f"{max_total_bytes}-byte limit (COMFY_MAX_INPUT_BYTES); send smaller files, send "
                    "them by 'url', or raise the limit"
                )
            decoded.append(InputImage(name=name, data=data, mime_type=sniff_mime(data[:SNIFF_BYTES], name)))
    return tuple(decoded), tuple(remote)


def upload_file_limit(max_input_bytes: int) -> int:
    """The largest single file ComfyUI's upload accepts when its limit is ``max_input_bytes``.

    ComfyUI's --max-upload-size counts the whole multipart form, so a file just under the limit
    is answered 413. Tiny limits (tests) are left as they are.
    """
    if max_input_bytes <= 4 * UPLOAD_FORM_BYTES:
        return max_input_bytes
    return max_input_bytes - UPLOAD_FORM_BYTES


def _parse_remote(entry: Mapping[str, Any], where: str, name: str, kind: str) -> RemoteInput:
    url = entry.get("url")
    if not isinstance(url, str) or not url.strip():
        raise JobInputError(f"{where}.url for {name!r} must be a non-empty http(s) or s3:// URL")
    url = url.strip()
    if len(url) > MAX_URL_CHARS or any(ord(ch) < 0x21 or ch == "\x7f" for ch in url):
        raise JobInputError(
            f"{where}.url for {name!r} is not a usable URL (spaces, control characters or over "
            f"{MAX_URL_CHARS} characters); percent-encode it"
        )
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a non-numeric or out-of-range port
    except ValueError:
        raise JobInputError(f"{where}.url for {name!r} is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in URL_SCHEMES:
        shown = f"{scheme}:" if scheme else "no scheme"
        raise JobInputError(
            f"{where}.url for {name!r} uses {shown}; only http://, https:// and s3://bucket/key URLs "
            "can be fetched"
        )
    if not parts.hostname:
        raise JobInputError(f"{where}.url for {name!r} has no host; example: https://example.com/photo.png")
    if parts.username is not None or parts.password is not None:
        raise JobInputError(
            f"{where}.url for {name!r} carries user:password; send credentials in {where}.headers "
            '(e.g. {"Authorization": "Basic ..."}) so they are never shown in messages'
        )
    if scheme == "s3" and (port is not None or not parts.path.strip("/")):
        raise JobInputError(f"{where}.url for {name!r} must look like s3://bucket/path/to/key")
    headers = _parse_headers(entry.get("headers"), f"{where}.headers", scheme)
    return RemoteInput(name=name, url=url, where=where, kind=kind, headers=headers)


def _parse_headers(value: Any, where: str, scheme: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if scheme == "s3":
        raise JobInputError(f"{where}: s3:// URLs are read with the bucket's credentials, not headers")
    if not isinstance(value, Mapping):
        raise JobInputError(
            f'{where} must be an object like {{"Authorization": "Bearer ..."}}, got {_kind(value)}'
        )
    if len(value) > MAX_HEADER_COUNT:
        raise JobInputError(f"{where} has {len(value)} headers; at most {MAX_HEADER_COUNT} are allowed")
    headers = []
    for key, header_value in value.items():
        if not isinstance(key, str) or not _HEADER_NAME.match(key):
            raise JobInputError(
                f"{where} has a header name that is not a valid HTTP token: {str(key)[:60]!r}"
            )
        if key.lower() in _RESERVED_HEADERS:
            raise JobInputError(f"{where}.{key} cannot be set; the worker sets it itself")
        # The value is never echoed: it is often a token.
        if not isinstance(header_value, str) or any(ch in header_value for ch in "\r\n\x00"):
            raise JobInputError(f"{where}.{key} must be a string on one line")
        headers.append((key, header_value))
    return tuple(headers)


def _parse_name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise JobInputError(f'{where}.name must be a non-empty file name such as "photo.png"')
    name = value.strip()
    if any(ord(ch) < 0x20 or ch == "\x7f" for ch in name):
        raise JobInputError(
            f"{where}.name {value[:80]!r} contains a control character (a newline?); use a plain file "
            'name such as "photo.png"'
        )
    size = len(name.encode("utf-8"))
    if size > MAX_FILE_NAME_BYTES:
        raise JobInputError(
            f"{where}.name is {size} bytes long; at most {MAX_FILE_NAME_BYTES} bytes (UTF-8), since file "
            "systems stop at 255 and the worker adds a 9-character job tag: shorten it"
        )
    if "/" in name or "\\" in name or name in (".", "..") or ".." in name or "\x00" in name:
        raise JobInputError(
            f"{where}.name {value!r} is not a plain file name: no '/', '\\' or '..'; "
            'use a name such as "photo.png" and the same name in your LoadImage node'
        )
    return name


def _decode_base64(value: Any, where: str, name: str) -> bytes:
    if not isinstance(value, str) or not value.strip():
        raise JobInputError(f"{where} for {name!r} must be a base64 string or a data URI")
    text = value.strip()
    match = _DATA_URI.match(text)
    if match:
        text = text[match.end() :]
    elif text.startswith("data:"):
        raise JobInputError(f"{where} for {name!r} is a data URI without ';base64,'; send base64 data")
    raw = "".join(text.split()).encode("ascii", errors="replace")
    if not _BASE64_CHARS.match(raw):
        raise JobInputError(f"{where} for {name!r} is not valid base64 (it has characters base64 never uses)")
    raw = raw.replace(b"-", b"+").replace(b"_", b"/")  # accept URL-safe base64 too
    raw += b"=" * (-len(raw) % 4)
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise JobInputError(f"{where} for {name!r} is not valid base64 (bad length or padding)") from None
    if not data:
        raise JobInputError(f"{where} for {name!r} decodes to an empty file")
    return data


def _parse_api_key(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise JobInputError("input.comfy_org_api_key must be a non-empty string (your Comfy.org API key)")
    return value.strip()


def _parse_timeout(value: Any, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise JobInputError(f"input.timeout must be a number of seconds, got {_kind(value)}")
    # Compare before isfinite: a huge JSON integer overflows float conversion.
    if not (0 < value <= MAX_TIMEOUT_S) or not math.isfinite(value):
        raise JobInputError(f"input.timeout must be between 0 and {MAX_TIMEOUT_S:g} seconds, got {value}")
    return float(value)


def _parse_output_mode(value: Any) -> str | None:
    if value is None:
        return None
    if value not in OUTPUT_MODES:
        raise JobInputError(f'input.output must be one of "base64", "s3" or "auto", got {value!r}'[:300])
    return str(value)


def _parse_convert(value: Any) -> ConvertOptions:
    example = 'e.g. "convert": {"ply": "spz"} or {"ply": "splat", "keep_original": true}'
    if value is None:
        return ConvertOptions()
    if not isinstance(value, Mapping):
        raise JobInputError(f"input.convert must be an object, got {_kind(value)}; {example}")
    unknown = sorted(set(value) - {"ply", "keep_original"})
    if unknown:
        raise JobInputError(
            f"input.convert has unknown key(s) {', '.join(map(repr, unknown))[:200]}; {example}"
        )
    target = value.get("ply")
    if target is not None and target not in SPLAT_FORMATS:
        raise JobInputError(
            f'input.convert.ply must be "spz" or "splat", got {target!r}'[:300] + f"; {example}"
        )
    return ConvertOptions(
        ply=target, keep_original=_parse_flag(value.get("keep_original"), "convert.keep_original")
    )


def _parse_flag(value: Any, name: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise JobInputError(f"input.{name} must be true or false, got {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__
