"""Pure parts of the testbed's leftover checks: device-mapper listings."""

from __future__ import annotations

import pytest

from tests.testbed import hostcheck
from tests.testbed.hostcheck import (
    dm_deps,
    dm_names,
    kernel_has_device_mapper,
    own_dm_devices,
)

MISC_WITHOUT_DM = " 58 userfaultfd\n237 loop-control\n234 btrfs-control\n183 hw_random\n"
MISC_WITH_DM = MISC_WITHOUT_DM + "236 device-mapper\n"


@pytest.mark.parametrize(
    ("misc", "expected"),
    [(MISC_WITHOUT_DM, False), (MISC_WITH_DM, True), ("", False), ("1 device-mapperx\n", False)],
)
def test_kernel_has_device_mapper(misc: str, expected: bool) -> None:
    assert kernel_has_device_mapper(misc) is expected


@pytest.mark.parametrize(
    ("listing", "names"),
    [
        ("No devices found", []),
        ("svc1.d0\t(253:0)\n", ["svc1.d0"]),
        ("ferry-s1-x\t(253:1)\nvg-root\t(253, 0)\n", ["ferry-s1-x", "vg-root"]),
        ("/dev/mapper/control: open failed: No such device\nCommand failed.", []),
    ],
)
def test_dm_names(listing: str, names: list[str]) -> None:
    assert dm_names(listing) == names


def test_dm_deps() -> None:
    assert dm_deps(" 1 dependencies\t: (loop3)\n") == ["loop3"]
    assert dm_deps(" 2 dependencies\t: (sda2) (loop12)\n") == ["sda2", "loop12"]
    assert dm_deps(" 0 dependencies\t:\n") == []


def test_own_dm_devices_by_prefix_or_by_own_loop_device() -> None:
    devices = {
        "svc1.d0": ["loop3"],  # on one of the testbed's loop devices
        "ferry-s9-extra": [],  # named with its prefix
        "ferry-other-x": ["loop3x"],  # another testbed's
        "vg-root": ["sda2"],  # the machine's own
    }
    found = own_dm_devices("ferry-s9-", devices, ["/dev/loop3", "/dev/loop4"])
    assert found == ["ferry-s9-extra", "svc1.d0"]
    assert own_dm_devices("ferry-s9-", devices, []) == ["ferry-s9-extra"]


def test_no_dmsetup_without_device_mapper(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without device-mapper ``dmsetup`` never runs (it would create /dev/mapper/control)."""
    ran: list[list[str]] = []

    def output(cmd: list[str]) -> str:
        ran.append(cmd)
        return ""

    monkeypatch.setattr(hostcheck, "kernel_has_device_mapper", lambda: False)
    monkeypatch.setattr(hostcheck, "_output", output)
    assert hostcheck._dm_traces("ferry-s9-", ["/dev/loop3"]) == []
    assert ran == []
    assert [note.split(":")[0] for note in hostcheck.not_applicable()] == ["dmsetup ls"]


def test_dmsetup_ls_with_device_mapper(monkeypatch: pytest.MonkeyPatch) -> None:
    outputs = {
        ("dmsetup", "ls"): "svc1.d0\t(253:0)\nvg-root\t(253:1)\n",
        ("dmsetup", "deps", "-o", "devname", "svc1.d0"): " 1 dependencies\t: (loop3)\n",
        ("dmsetup", "deps", "-o", "devname", "vg-root"): " 1 dependencies\t: (sda2)\n",
    }
    monkeypatch.setattr(hostcheck, "dmsetup_usable", lambda: True)
    monkeypatch.setattr(hostcheck, "_output", lambda cmd: outputs[tuple(cmd)])
    assert hostcheck._dm_traces("ferry-s9-", ["/dev/loop3"]) == ["dm device svc1.d0"]
    assert hostcheck.not_applicable() == []
