"""One host per data folder: an exclusive OS lock, which the kernel drops when the process dies.

Two hosts on one folder both ran every activity and left jobs stuck forever; a lock file with a
pid in it would outlive a SIGKILLed host. flock(2) does neither: the second host is refused at
once, and a killed host's lock is gone with it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from devhost.errors import AppLoadError

LOCK_NAME = "host.lock"


class DataFolderLock:
    """Held from start to exit; the file also tells who holds it."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> DataFolderLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise AppLoadError(
                f"{self.path.parent} is in use by another devhost (pid {holder}): stop it, "
                "or give this one its own --data folder"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None
