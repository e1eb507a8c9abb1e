"""Which host, boot and process own a temp name or a run: the owner token that temp names and run tags carry,
so recovery judges only what provably belongs to this host and to a process that is dead on it.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
from dataclasses import dataclass
from functools import cache
from pathlib import Path

# `<host id>.<boot id>.<pid>`: 8 hex digits each for host and boot.
OWNER_PATTERN = r"(?P<host>[0-9a-f]{8})\.(?P<boot>[0-9a-f]{8})\.(?P<pid>\d+)"
_OWNER = re.compile(rf"^{OWNER_PATTERN}$")


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


@cache
def host_id() -> str:
    """8 hex digits naming the space this process's pids live in: sha256 of the machine id, the host name
    and the inode of the PID namespace. Two containers or `unshare` namespaces on one machine differ (own
    host name or PID namespace), so a pid seen in one says nothing about the other."""
    try:
        pid_namespace = str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:  # no procfs (not Linux): the host name and machine id alone
        pid_namespace = ""
    parts = (_read("/etc/machine-id"), socket.gethostname(), pid_namespace)
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:8]


@cache
def boot_id() -> str:
    """8 hex digits of this boot: the kernel's `/proc/sys/kernel/random/boot_id` (else the boot time), so
    a process of an earlier boot of this host is known dead whatever its pid."""
    kernel = _read("/proc/sys/kernel/random/boot_id").replace("-", "")
    if kernel:
        return kernel[:8]
    import psutil

    return hashlib.sha256(str(int(psutil.boot_time())).encode()).hexdigest()[:8]


def pid_alive(pid: int, not_after: float) -> bool:
    """Whether this host runs process `pid`, started no later than `not_after` (epoch seconds): a pid the
    kernel reused for a newer process is not the one that wrote or ran before `not_after`."""
    import psutil

    try:
        process = psutil.Process(pid)
        return process.status() != psutil.STATUS_ZOMBIE and process.create_time() <= not_after + 1.0
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        return True


@dataclass(frozen=True)
class Owner:
    """A process as host id, boot id and pid (`str(owner)` is the token names and tags carry)."""

    host: str
    boot: str
    pid: int

    @classmethod
    def this_process(cls, pid: int | None = None) -> Owner:
        """This process (or process `pid` of this host and boot)."""
        return cls(host_id(), boot_id(), os.getpid() if pid is None else pid)

    @classmethod
    def parse(cls, token: str | None) -> Owner | None:
        match = _OWNER.match(token or "")
        return cls(match["host"], match["boot"], int(match["pid"])) if match else None

    def __str__(self) -> str:
        return f"{self.host}.{self.boot}.{self.pid}"

    def on_this_host(self) -> bool:
        return self.host == host_id()

    def provably_dead(self, not_after: float, earlier_boots: bool = False) -> bool:
        """True only when this host can prove the process gone: it ran on this host in this boot and no
        process started by `not_after` (epoch seconds) has its pid now; with `earlier_boots`, also when
        it ran on this host in an earlier boot (a reboot ended it). A process of another host, or of
        another boot without `earlier_boots`, is never judged here (False): two machines whose host ids
        collide (same machine id, host name and PID-namespace inode, as clones of one container image
        can have) differ only in their boot ids."""
        if not self.on_this_host():
            return False
        if self.boot != boot_id():
            return earlier_boots
        return not pid_alive(self.pid, not_after)
