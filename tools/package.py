"""Build dist/audit-api.zip, the package both pipelines and `azd deploy` ship (make package).

Contents: the project folder minus what `.funcignore` names (gitignore rules: negation, anchoring,
`**`), plus the locked runtime dependencies (requirements.lock) under
`.python_packages/lib/site-packages`, which Azure runs as they are (no remote build).

The wheels are chosen for the target, not for the machine that builds (tools/platform_check.py),
each is checked against its locked hash, and the result is checked before it is zipped: any
machine, Linux, macOS or Windows, builds the same package.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import pathspec

from tools.platform_check import pip_install_for_target, problems

ROOT = Path(__file__).resolve().parent.parent
NAME = "audit-api"
PACKAGES = ".python_packages/lib/site-packages"
ALWAYS_EXCLUDED = ["__pycache__/", "*.pyc", ".DS_Store", ".git/"]
FIXED_TIME = (2020, 1, 1, 0, 0, 0)  # zip entries get one timestamp: same inputs, same bytes


class PackageError(RuntimeError):
    """The package would not run on the target; the message lists every reason."""


def funcignore(root: Path) -> pathspec.PathSpec:
    """.funcignore as gitignore rules (negation, anchoring, `**`), plus what is never shipped."""
    path = root / ".funcignore"
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return pathspec.GitIgnoreSpec.from_lines([*ALWAYS_EXCLUDED, *lines])


def app_sources(root: Path) -> list[Path]:
    """Every file of the project that .funcignore does not exclude.

    An excluded folder is not entered: as in git, nothing inside it can be re-included.
    """
    spec = funcignore(root)
    files = []
    for folder, dirs, names in os.walk(root):
        here = Path(folder).relative_to(root)
        dirs[:] = sorted(d for d in dirs if not spec.match_file(f"{(here / d).as_posix()}/"))
        files += [
            root / here / n for n in sorted(names) if not spec.match_file((here / n).as_posix())
        ]
    return sorted(files)


def install_dependencies(target: Path, lock: Path = ROOT / "requirements.lock") -> None:
    """Exactly the locked wheels, each checked against its hash (see tools/lock.py)."""
    pip_install_for_target(
        "--no-compile", "--no-deps", "--require-hashes", f"--target={target}", "-r", str(lock)
    )


def write_zip(staging: Path, destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    never = pathspec.GitIgnoreSpec.from_lines(ALWAYS_EXCLUDED)
    with zipfile.ZipFile(destination, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(staging.rglob("*")):
            relative = path.relative_to(staging)
            if path.is_file() and not never.match_file(relative.as_posix()):
                info = zipfile.ZipInfo(relative.as_posix(), FIXED_TIME)
                info.external_attr = (0o755 if os.access(path, os.X_OK) else 0o644) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, path.read_bytes())


def build(out_dir: Path = ROOT / "dist", root: Path = ROOT) -> Path:
    with tempfile.TemporaryDirectory() as temp:
        staging = Path(temp)
        for source in app_sources(root):
            target = staging / source.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        install_dependencies(staging / PACKAGES, root / "requirements.lock")
        found = problems(staging / PACKAGES)
        if found:
            raise PackageError("would not load on Azure's image:\n  " + "\n  ".join(found))
        destination = out_dir / f"{NAME}.zip"
        write_zip(staging, destination)
    return destination


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    try:
        path = build(parser.parse_args().out)
    except PackageError as error:
        raise SystemExit(f"make package: {error}") from None
    print(f"built {path} ({path.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
