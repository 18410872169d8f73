"""The deploy target, and whether an unpacked package runs on it: wheel tags, ELF symbols.

The target is Azure Functions' Python 3.11 image on Linux x86_64: Debian bullseye, glibc 2.31.
A wheel built for a newer glibc (cryptography's manylinux_2_34, say) installs fine on a newer
build machine and fails at import in Azure.

Two independent proofs, because either can lie alone: a wheel's tag says what its builder
promised; the `GLIBC_x.y` versions its shared objects need (ELF `.gnu.version_r`, read with
pyelftools) say what the dynamic loader will demand at import.
"""

from __future__ import annotations

import re
from email.parser import HeaderParser
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection
from packaging.tags import Tag, compatible_tags, cpython_tags, parse_tag

TARGET_PYTHON = (3, 11)
TARGET_GLIBC = (2, 31)
LEGACY_ALIASES = ("manylinux2014", "manylinux2010", "manylinux1")  # glibc 2.17, 2.12, 2.5
ELF_MAGIC = b"\x7fELF"
_GLIBC = re.compile(r"GLIBC_(\d+)\.(\d+)(?:\.\d+)?")


def target_platforms(glibc: tuple[int, int] = TARGET_GLIBC) -> list[str]:
    """Every manylinux x86_64 platform tag that runs on that glibc, newest first.

    pip does not widen an explicit `manylinux_2_X` tag to older ones, so each is listed.
    """
    major, minor = glibc
    tags = [f"manylinux_{major}_{m}_x86_64" for m in range(minor, 4, -1)]
    return [*tags, *(f"{alias}_x86_64" for alias in LEGACY_ALIASES)]


def target_tags(python: tuple[int, int], platforms: list[str]) -> set[Tag]:
    """Every wheel tag pip would accept for that CPython on those platforms."""
    return {
        *cpython_tags(python, platforms=platforms),
        *compatible_tags(python, f"cp{python[0]}{python[1]}", platforms),
    }


def wheel_tags(site_packages: Path) -> dict[str, list[str]]:
    """The Tag lines of every installed wheel, by dist-info folder (any one tag must match)."""
    found = {}
    for wheel in sorted(site_packages.glob("*.dist-info/WHEEL")):
        headers = HeaderParser().parsestr(wheel.read_text(encoding="utf-8"))
        found[wheel.parent.name] = headers.get_all("Tag") or []
    return found


def glibc_needed(path: Path) -> tuple[int, int] | None:
    """The newest GLIBC_ symbol version an ELF file requires, or None (none, or not ELF)."""
    with path.open("rb") as stream:
        if stream.read(4) != ELF_MAGIC:
            return None
        stream.seek(0)
        try:
            elf = ELFFile(stream)
        except ELFError:
            return None
        newest = None
        for section in elf.iter_sections():
            if not isinstance(section, GNUVerNeedSection):
                continue
            for _, auxiliaries in section.iter_versions():
                for aux in auxiliaries:
                    match = _GLIBC.fullmatch(aux.name)
                    if match:
                        version = (int(match[1]), int(match[2]))
                        newest = version if newest is None else max(newest, version)
        return newest


def problems(
    site_packages: Path,
    python: tuple[int, int] = TARGET_PYTHON,
    glibc: tuple[int, int] = TARGET_GLIBC,
) -> list[str]:
    """Everything under site_packages that would not load on that Python and glibc."""
    accepted = target_tags(python, target_platforms(glibc))
    found = []
    for dist, tags in wheel_tags(site_packages).items():
        if not any(parse_tag(tag) & accepted for tag in tags):
            found.append(f"{dist}: wheel tags {', '.join(tags)} do not run on the target")
    for path in sorted(p for p in site_packages.rglob("*") if p.is_file()):
        needs = glibc_needed(path)
        if needs is not None and needs > glibc:
            relative = path.relative_to(site_packages)
            found.append(f"{relative}: needs GLIBC_{needs[0]}.{needs[1]}")
    return found
