"""Build dist/audit-api.zip, the package both pipelines deploy (make package).

Contents: host.json, every function folder, shared/, requirements.txt, and the runtime
dependencies under .python_packages/lib/site-packages (what Azure runs with zip deploy and no
remote build). Everything .funcignore names is left out, and so is anything else that is not
the app. Build on Linux with Python 3.11, like the function app's runtime.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAME = "audit-api"
APP_FILES = ("host.json", "requirements.txt")
PACKAGES = ".python_packages/lib/site-packages"
ALWAYS_EXCLUDED = ("__pycache__", "*.pyc", ".DS_Store")
FIXED_TIME = (2020, 1, 1, 0, 0, 0)  # zip entries get one timestamp: same inputs, same bytes


def ignored_patterns(root: Path) -> list[str]:
    path = root / ".funcignore"
    lines = path.read_text().splitlines() if path.exists() else []
    return [ln.strip().rstrip("/") for ln in lines if ln.strip() and not ln.startswith("#")]


def is_ignored(relative: Path, patterns: list[str]) -> bool:
    parts = relative.parts
    return any(
        fnmatch.fnmatch(part, pattern)
        for pattern in (*patterns, *ALWAYS_EXCLUDED)
        for part in parts
    ) or any(fnmatch.fnmatch(relative.as_posix(), p) for p in patterns)


def app_sources(root: Path) -> list[Path]:
    """The files that make the app: host.json, function folders, shared/."""
    patterns = ignored_patterns(root)
    tops = [root / f for f in APP_FILES]
    tops += sorted(p for p in root.iterdir() if (p / "function.json").is_file())
    tops.append(root / "shared")
    files = []
    for top in tops:
        candidates = [top] if top.is_file() else sorted(top.rglob("*"))
        files += [
            f for f in candidates if f.is_file() and not is_ignored(f.relative_to(root), patterns)
        ]
    return files


def install_dependencies(target: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            "--only-binary=:all:",
            f"--target={target}",
            "-r",
            str(ROOT / "requirements.txt"),
        ],
        check=True,
    )


def write_zip(staging: Path, destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(destination, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(staging.rglob("*")):
            relative = path.relative_to(staging)
            if path.is_file() and not is_ignored(relative, []):
                info = zipfile.ZipInfo(relative.as_posix(), FIXED_TIME)
                info.external_attr = (0o755 if os.access(path, os.X_OK) else 0o644) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, path.read_bytes())


def build(out_dir: Path = ROOT / "dist") -> Path:
    if sys.version_info[:2] != (3, 11) or not sys.platform.startswith("linux"):
        print(
            "warning: Azure runs Linux/Python 3.11; dependencies are built for this machine",
            file=sys.stderr,
        )
    with tempfile.TemporaryDirectory() as temp:
        staging = Path(temp)
        for source in app_sources(ROOT):
            target = staging / source.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        install_dependencies(staging / PACKAGES)
        destination = out_dir / f"{NAME}.zip"
        write_zip(staging, destination)
    return destination


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    path = build(parser.parse_args().out)
    print(f"built {path} ({path.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
