"""The host-wide list of what testbeds made on the host (pure file logic, in tmp)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

import pytest

from tests.testbed import hostmade


def test_claims_add_up_and_the_last_release_removes_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "host-made"
    monkeypatch.setattr(hostmade, "MARKER", marker)
    assert hostmade.listed() == set() and not marker.exists()
    hostmade.claim([])  # nothing made: no file
    assert not marker.exists()
    hostmade.claim(["dir:/dev/mapper", "mount:/run/netns"])  # testbed A
    hostmade.claim(["dir:/dev/mapper"])  # testbed B claims the same: listed once
    assert marker.read_text() == "dir:/dev/mapper\nmount:/run/netns\n"
    assert hostmade.listed() == {"dir:/dev/mapper", "mount:/run/netns"}
    hostmade.release(["mount:/run/netns"])
    assert hostmade.listed() == {"dir:/dev/mapper"}
    hostmade.release(["dir:/dev/mapper", "dir:/elsewhere"])
    assert not marker.exists()
    hostmade.release(["dir:/dev/mapper"])  # nothing listed: nothing to do
    assert not marker.exists()


def test_a_holder_whose_file_was_removed_meanwhile_opens_the_new_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Process P opened the list, then waited for the lock while the last holder emptied and
    removed it: P must not write its claim into the removed file."""
    marker = tmp_path / "host-made"
    monkeypatch.setattr(hostmade, "MARKER", marker)
    hostmade.claim(["dir:/dev/mapper"])
    removed = tmp_path / "removed"
    os.link(marker, removed)  # the inode P holds open
    hostmade.release(["dir:/dev/mapper"])  # the last holder: the file is gone
    assert not marker.exists()
    opened: list[Path] = []

    def open_as_p(path: Path, mode: str) -> IO[str]:
        opened.append(path)
        return open(removed if len(opened) == 1 else path, mode)

    monkeypatch.setattr(hostmade, "open", open_as_p, raising=False)
    marker.write_text("")  # a new list was made meanwhile
    hostmade.claim(["dir:/run/netns"])
    assert len(opened) == 2  # P saw the inode it held was not the list's, and opened again
    assert marker.read_text() == "dir:/run/netns\n"
    assert removed.read_text() == "dir:/dev/mapper\n"
