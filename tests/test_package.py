"""The deployable zip: what is in it, what is not, and that its functions import on their own."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tools import package

FUNCTIONS = [
    "client-function",
    "get-status-function",
    "orchestrator-function",
    "query-storage-account-activity-function",
]
FORBIDDEN = [
    "tests/",
    "devhost/",
    "tools/",
    "docs/",
    "node_modules/",
    ".venv/",
    ".git",
    "__pycache__",
    ".pyc",
    "local.settings",
    "Makefile",
    "pyproject.toml",
    "package.json",
    "requirements-dev.txt",
    "azure-pipelines.yml",
    ".github/",
    "bench",
]

# What the Python worker does: packages first, the app root last, `__app__` as the app package.
IMPORT_LIKE_THE_WORKER = """
import importlib, json, sys, types
root, packages, names = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
sys.path[:0] = [packages]
sys.path.append(root)
app = types.ModuleType("__app__"); app.__path__ = [root]; sys.modules["__app__"] = app
for name in names:
    module = importlib.import_module(f"__app__.{name}")
    assert callable(module.main), name
    assert not module.__file__.startswith(tuple(p for p in sys.path[1:-1] if "site-packages" in p))
print("imported", len(names))
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return package.build(tmp_path_factory.mktemp("dist"))


def test_the_zip_holds_the_app_at_its_root(built):
    names = zipfile.ZipFile(built).namelist()
    assert "host.json" in names
    for function in FUNCTIONS:
        assert f"{function}/__init__.py" in names and f"{function}/function.json" in names
    assert "shared/jobs.py" in names
    assert any(n.startswith(f"{package.PACKAGES}/azure/durable_functions/") for n in names)
    assert any(n.startswith(f"{package.PACKAGES}/azure/data/tables/") for n in names)


def test_the_zip_leaves_out_everything_that_is_not_the_app(built):
    app_names = [
        n for n in zipfile.ZipFile(built).namelist() if not n.startswith(".python_packages/")
    ]
    for name in app_names:
        assert not any(bad in name for bad in FORBIDDEN), name


def test_every_function_imports_from_the_unpacked_zip_alone(built, tmp_path):
    zipfile.ZipFile(built).extractall(tmp_path)
    result = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            IMPORT_LIKE_THE_WORKER,
            str(tmp_path),
            str(tmp_path / package.PACKAGES),
            json.dumps(FUNCTIONS),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "imported 4" in result.stdout


def test_the_build_is_reproducible(built, tmp_path):
    again = package.build(tmp_path)
    assert again.read_bytes() == built.read_bytes()
