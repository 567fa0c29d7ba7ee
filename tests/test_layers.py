"""How the handler's modules depend on each other: light imports, and only downward."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

HANDLER = Path(__file__).resolve().parents[1] / "handler"
HEAVY = ("boto3", "botocore", "aiohttp", "runpod")


@pytest.mark.parametrize(
    "module", ["handler", "handler.job", "handler.config", "handler.errors", "handler.values"]
)
def test_light_modules_load_no_network_library(module: str) -> None:
    # A fresh interpreter: this process has long since imported everything.
    code = f"import sys, {module}; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert loaded == [], f"import {module} loaded {loaded}"


def test_the_package_still_offers_its_names_on_first_use() -> None:
    code = "import handler; print(handler.Worker.__module__, handler.parse_job_input.__module__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split() == ["handler.worker", "handler.job"]


def _imports(path: Path) -> set[str]:
    """The handler modules `path` imports, as dotted names relative to the package."""
    package = path.relative_to(HANDLER).parent.parts
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = list(package[: len(package) - (node.level - 1)])
            target = [*base, *(node.module.split(".") if node.module else [])]
            found.add(".".join(target))
            found.update(".".join([*target, alias.name]) for alias in node.names)
    return found


# Lower layers never import the job layer, the pipeline or a sibling package's internals.
@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("comfy/client.py", ("job", "outputs", "worker", "storage")),
        ("comfy/folders.py", ("outputs", "job", "worker")),
        ("progress.py", ("comfy.session", "comfy", "worker")),
        ("config.py", ("storage", "job", "worker")),
        ("job.py", ("storage", "worker", "comfy")),
        ("storage/plan.py", ("errors.JobInputError",)),
        ("values.py", ("job", "comfy", "storage", "worker", "config")),
    ],
)
def test_layers_import_downward(module: str, forbidden: tuple[str, ...]) -> None:
    imported = _imports(HANDLER / module)
    wrong = sorted(m for m in imported for f in forbidden if m == f or m.startswith(f + "."))
    assert wrong == [], f"{module} imports {wrong}"


def test_benchmarks_do_not_import_the_tests() -> None:
    # Shared servers and stubs live in testkit/; tests/ may change without breaking a benchmark.
    bench = HANDLER.parent / "bench"
    wrong = []
    for path in sorted(bench.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            wrong += [f"{path.name}: {name}" for name in names if name.split(".")[0] == "tests"]
    assert wrong == []


def test_aiohttp_is_imported_only_at_the_two_http_boundaries() -> None:
    # comfy/client.py talks to ComfyUI; inputs/ downloads input URLs through its address guard.
    importers = set()
    for path in HANDLER.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            if any(name.split(".")[0] == "aiohttp" for name in names):
                importers.add(path.relative_to(HANDLER).as_posix())
    assert importers == {"comfy/client.py", "inputs/connector.py", "inputs/fetch.py"}


def test_only_config_reads_the_environment() -> None:
    # __main__ hands os.environ to Settings.from_env; nothing else looks at it.
    readers = set()
    for path in HANDLER.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in ("environ", "getenv", "environb")
                and isinstance(node.value, ast.Name)
                and node.value.id == "os"
            ):
                readers.add(path.relative_to(HANDLER).as_posix())
    assert readers <= {"config.py", "__main__.py"}
