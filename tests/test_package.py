"""The deployable zip: what is in it, what is not, and that its functions import on their own."""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tools import package, platform_check

FUNCTIONS = [
    "client-function",
    "count-distinct-activity-function",
    "delete-range-results-activity-function",
    "get-status-function",
    "orchestrator-function",
    "query-storage-account-activity-function",
    "retention-timer-function",
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
    "infra/",
    "azure.yaml",
    ".azure/",
    ".funcignore",
    "README",
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
# what the managed-identity and App Configuration ways do first: loads cryptography's Rust core
from azure.identity import DefaultAzureCredential
DefaultAzureCredential()
from cryptography.hazmat.bindings._rust import openssl
print("imported", len(names), "and created DefaultAzureCredential")
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return package.build(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def unpacked(built, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("unpacked")
    zipfile.ZipFile(built).extractall(folder)
    return folder


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


def test_every_function_imports_from_the_unpacked_zip_alone(unpacked):
    result = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            IMPORT_LIKE_THE_WORKER,
            str(unpacked),
            str(unpacked / package.PACKAGES),
            json.dumps(FUNCTIONS),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=unpacked,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"imported {len(FUNCTIONS)} and created DefaultAzureCredential" in result.stdout


def test_the_build_is_reproducible(built, tmp_path):
    again = package.build(tmp_path)
    assert again.read_bytes() == built.read_bytes()


def test_every_wheel_and_shared_object_runs_on_azures_python_image(unpacked):
    site_packages = unpacked / package.PACKAGES
    assert platform_check.TARGET_GLIBC == (2, 31)  # Debian bullseye, the Python 3.11 image
    assert platform_check.problems(site_packages) == []
    # the check saw real native code: the module that failed in Azure is there and inspected
    rust = next(site_packages.glob("cryptography/hazmat/bindings/_rust*.so"))
    needs = platform_check.glibc_needed(rust)
    assert needs is not None and needs <= (2, 31)


def test_the_platform_check_refuses_a_newer_wheel_tag_or_glibc_symbol(tmp_path):
    wheel = tmp_path / "cryptography-50.0.2.dist-info"
    wheel.mkdir()
    (wheel / "WHEEL").write_text("Wheel-Version: 1.0\nTag: cp311-abi3-manylinux_2_34_x86_64\n")
    (tmp_path / "pure-1.0.dist-info").mkdir()
    (tmp_path / "pure-1.0.dist-info" / "WHEEL").write_text("Tag: py2-none-any\nTag: py3-none-any\n")
    (tmp_path / "other-1.0.dist-info").mkdir()
    (tmp_path / "other-1.0.dist-info" / "WHEEL").write_text(
        "Tag: cp312-cp312-manylinux_2_17_x86_64\n"
    )
    found = platform_check.problems(tmp_path)
    assert len(found) == 2
    assert found[0].startswith(
        "cryptography-50.0.2.dist-info: wheel tags cp311-abi3-manylinux_2_34"
    )
    assert found[1].startswith("other-1.0.dist-info")


def test_the_platform_check_reads_what_an_elf_file_needs_of_the_system(tmp_path):
    glibc = tuple(int(p) for p in platform.libc_ver()[1].split(".")[:2])
    if glibc <= (2, 31):
        pytest.skip("this machine's own binaries are old enough for the target")
    binary = Path(shutil.which("ls") or "/bin/ls").resolve()
    shutil.copy(binary, tmp_path / "native.so")
    (tmp_path / "text.py").write_text("print('not ELF')\n")
    needs = platform_check.glibc_needed(tmp_path / "native.so")
    assert needs is not None and (2, 31) < needs <= glibc
    found = platform_check.problems(tmp_path)
    assert f"native.so: needs GLIBC_{needs[0]}.{needs[1]}" in found
    assert platform_check.glibc_needed(tmp_path / "text.py") is None
    # a library the target does not promise must travel in the package
    facts = platform_check.elf_facts(tmp_path / "native.so")
    foreign = [n for n in facts.needed if n not in platform_check.SYSTEM_LIBRARIES]
    for name in foreign:
        assert f"native.so: needs {name}, which the target does not promise" in found
        (tmp_path / name).write_bytes(b"bundled")
    assert len(platform_check.problems(tmp_path)) == len(found) - len(foreign)


def test_funcignore_is_read_with_gitignore_rules(tmp_path):
    files = [
        "host.json",
        "fn/__init__.py",
        "fn/function.json",
        "docs/guide.md",  # anchored /docs: only the top folder
        "shared/docs/data.json",
        "notes.md",  # *.md ...
        "shared/KEEP.md",  # ... but !KEEP.md re-includes it
        "shared/cache/x/tmp.bin",  # **/tmp.bin
        "shared/__pycache__/a.pyc",  # never shipped
        ".venv/lib/x.py",
    ]
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    (tmp_path / ".funcignore").write_text(
        "# comment\n/docs\n*.md\n!KEEP.md\n**/tmp.bin\n.venv/\n.funcignore\n"
    )
    kept = {p.relative_to(tmp_path).as_posix() for p in package.app_sources(tmp_path)}
    assert kept == {
        "host.json",
        "fn/__init__.py",
        "fn/function.json",
        "shared/docs/data.json",
        "shared/KEEP.md",
    }


def test_the_project_funcignore_ships_only_the_app():
    tops = {p.relative_to(package.ROOT).parts[0] for p in package.app_sources(package.ROOT)}
    assert tops == {"host.json", "requirements.txt", "shared", *FUNCTIONS}


def test_the_lock_pins_every_requirement_with_a_hash():
    def pins(text: str) -> dict[str, str]:
        found = {}
        for raw in text.splitlines():
            line = raw.split("#")[0].strip().rstrip("\\").strip()
            if "==" in line:
                name, version = line.split("==")
                found[name.lower()] = version.split()[0]
        return found

    lock_text = (package.ROOT / "requirements.lock").read_text()
    locked = pins(lock_text)
    required = pins((package.ROOT / "requirements.txt").read_text())
    assert required and {n: locked.get(n) for n in required} == required, "run make lock"
    assert lock_text.count("--hash=sha256:") == len(locked)
