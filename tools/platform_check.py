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
import subprocess
import sys
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection
from packaging.tags import Tag, compatible_tags, cpython_tags, parse_tag

TARGET_PYTHON = (3, 11)
TARGET_GLIBC = (2, 31)
LEGACY_ALIASES = ("manylinux2014", "manylinux2010", "manylinux1")  # glibc 2.17, 2.12, 2.5
ELF_MAGIC = b"\x7fELF"
_VERSIONED = re.compile(r"(GLIBC|GLIBCXX|CXXABI|GCC)_(\d+(?:\.\d+)*)")
# What Debian bullseye's libstdc++ and libgcc 10 provide (the manylinux_2_31 policy's versions).
SYMBOL_LIMITS = {"GLIBCXX": (3, 4, 28), "CXXABI": (1, 3, 12), "GCC": (7, 0, 0)}
# The system libraries a manylinux wheel may load from the target (PEP 600, auditwheel's policy);
# anything else must be bundled in the package (as auditwheel's `.libs` folders do).
SYSTEM_LIBRARIES = {
    "libc.so.6",
    "libm.so.6",
    "libdl.so.2",
    "librt.so.1",
    "libpthread.so.0",
    "libutil.so.1",
    "libnsl.so.1",
    "libresolv.so.2",
    "libgcc_s.so.1",
    "libstdc++.so.6",
    "ld-linux-x86-64.so.2",  # the dynamic loader itself
}


def target_platforms(glibc: tuple[int, int] = TARGET_GLIBC) -> list[str]:
    """Every manylinux x86_64 platform tag that runs on that glibc, newest first.

    pip does not widen an explicit `manylinux_2_X` tag to older ones, so each is listed.
    """
    major, minor = glibc
    tags = [f"manylinux_{major}_{m}_x86_64" for m in range(minor, 4, -1)]
    return [*tags, *(f"{alias}_x86_64" for alias in LEGACY_ALIASES)]


def pip_target_arguments() -> list[str]:
    """pip's options that choose wheels for the target instead of for this machine."""
    major, minor = TARGET_PYTHON
    return [
        "--only-binary=:all:",
        *(arg for p in target_platforms() for arg in ("--platform", p)),
        f"--python-version={major}.{minor}",
        "--implementation=cp",
    ]


def pip_install_for_target(*arguments: str) -> None:
    """`pip install` choosing wheels for the target, whatever machine runs it."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            *pip_target_arguments(),
            *arguments,
        ],
        check=True,
    )


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


@dataclass(frozen=True)
class ElfFacts:
    """What the dynamic loader will ask of the target for one shared object."""

    machine: str
    needed: tuple[str, ...]  # DT_NEEDED libraries
    versions: dict[str, tuple[int, ...]]  # newest required version per prefix (GLIBC, ...)


def elf_facts(path: Path) -> ElfFacts | None:
    """The facts of an ELF file, or None when it is not one."""
    with path.open("rb") as stream:
        if stream.read(4) != ELF_MAGIC:
            return None
        stream.seek(0)
        try:
            elf = ELFFile(stream)
            needed, versions = [], {}
            for section in elf.iter_sections():
                if isinstance(section, DynamicSection):
                    needed += [
                        t.needed for t in section.iter_tags() if t.entry.d_tag == "DT_NEEDED"
                    ]
                elif isinstance(section, GNUVerNeedSection):
                    for _, auxiliaries in section.iter_versions():
                        for aux in auxiliaries:
                            match = _VERSIONED.fullmatch(aux.name)
                            if match:
                                version = tuple(int(n) for n in match[2].split("."))
                                versions[match[1]] = max(version, versions.get(match[1], ()))
            return ElfFacts(elf["e_machine"], tuple(needed), versions)
        except ELFError:
            return None


def glibc_needed(path: Path) -> tuple[int, ...] | None:
    """The newest GLIBC_ symbol version an ELF file requires, or None (none, or not ELF)."""
    facts = elf_facts(path)
    return facts.versions.get("GLIBC") if facts else None


def problems(
    site_packages: Path,
    python: tuple[int, int] = TARGET_PYTHON,
    glibc: tuple[int, int] = TARGET_GLIBC,
) -> list[str]:
    """Everything under site_packages that would not load on that Python and glibc."""
    accepted = target_tags(python, target_platforms(glibc))
    limits = {**SYMBOL_LIMITS, "GLIBC": glibc}
    found = []
    for dist, tags in wheel_tags(site_packages).items():
        if not any(parse_tag(tag) & accepted for tag in tags):
            found.append(f"{dist}: wheel tags {', '.join(tags)} do not run on the target")
    files = sorted(p for p in site_packages.rglob("*") if p.is_file())
    bundled = {p.name for p in files}
    for path in files:
        facts = elf_facts(path)
        if facts is None:
            continue
        where = path.relative_to(site_packages)
        if facts.machine != "EM_X86_64":
            found.append(f"{where}: built for {facts.machine}")
        for prefix, version in sorted(facts.versions.items()):
            if prefix in limits and version > limits[prefix]:
                found.append(f"{where}: needs {prefix}_{'.'.join(map(str, version))}")
        for library in facts.needed:
            if library not in SYSTEM_LIBRARIES and library not in bundled:
                found.append(f"{where}: needs {library}, which the target does not promise")
    return found
