"""The unit files of systemd/ pass ``systemd-analyze verify``, and ferryd's hardening keeps
what the daemon needs: its mounts reach the host (docs/daemon.md, "The systemd unit")."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS = sorted((ROOT / "systemd").glob("*.service"))
# Each gives the unit a mount namespace of its own, with propagation to the host turned
# off (systemd.exec(5), PrivateMounts=): a filesystem ferryd mounts, a /run/netns entry it
# makes, would be seen neither by the host nor by the next ferryd after a restart.
MOUNT_NAMESPACE = (
    "PrivateMounts", "PrivateTmp", "PrivateDevices", "PrivateIPC", "ProtectSystem",
    "ProtectHome", "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs",
    "ProtectControlGroups", "ProtectProc", "ProcSubset", "ReadOnlyPaths", "ReadWritePaths",
    "InaccessiblePaths", "ExecPaths", "NoExecPaths", "TemporaryFileSystem", "BindPaths",
    "BindReadOnlyPaths", "MountImages", "RootDirectory", "RootImage", "MountAPIVFS",
)  # fmt: skip
# A device allow-list (ProtectClock implies one) leaves no block device to mount; the
# others break what ferryd's children do (setuid binaries, namespaces, other hostnames).
BREAKS_CHILDREN = (
    "DeviceAllow", "DevicePolicy", "ProtectClock", "ProtectHostname", "NoNewPrivileges",
    "RestrictNamespaces", "RestrictSUIDSGID", "RestrictAddressFamilies", "PrivateNetwork",
    "MemoryDenyWriteExecute", "SystemCallFilter", "SystemCallArchitectures",
    "RestrictRealtime", "CapabilityBoundingSet",
)  # fmt: skip


def _settings(unit: Path) -> dict[str, str]:
    """The [Service] section's key -> value (comments left out)."""
    out: dict[str, str] = {}
    section = ""
    for line in unit.read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and line and not line.startswith(("#", ";")):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is absent (Debian package systemd; scripts/host-deps.sh installs it)",
)
@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_unit_verifies(unit: Path, tmp_path: Path) -> None:
    # verify wants the ExecStart binary to exist: point it at this checkout's ferryd.
    ferryd = shutil.which("ferryd") or str(Path(sys.executable).parent / "ferryd")
    copy = tmp_path / unit.name
    copy.write_text(unit.read_text().replace("/usr/bin/ferryd", ferryd))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"},
    )
    assert result.returncode == 0, result.stderr
    assert unit.name not in result.stderr, result.stderr


def test_units_exist() -> None:
    assert [u.name for u in UNITS] == ["ferryd.service"]


def test_ferryd_runs_in_the_hosts_mount_namespace() -> None:
    settings = _settings(ROOT / "systemd" / "ferryd.service")
    assert settings["Type"] == "notify" and settings["Restart"] == "on-failure"
    assert settings["KillMode"] == "process"  # a restart never stops an application
    taken = {k for k in settings if k in MOUNT_NAMESPACE + BREAKS_CHILDREN}
    assert not taken, f"see docs/daemon.md, 'The systemd unit', before taking {sorted(taken)}"
    assert settings["LockPersonality"] == "yes"
