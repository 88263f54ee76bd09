from daemon.resources.fs.driver import subvolume_of
from daemon.system.mounts import parse_mountinfo

SAMPLE = (
    "36 35 98:0 /mnt1 /mnt/parent\\040dir rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n"
    "50 22 0:45 /data /srv/svc1/data rw,relatime shared:30 - btrfs /dev/loop3 rw,space_cache=v2\n"
    "garbage line\n"
)


def test_parse_mountinfo() -> None:
    first, second = parse_mountinfo(SAMPLE)
    assert first.target == "/mnt/parent dir"
    assert first.root == "/mnt1"
    assert (second.fstype, second.source, second.root) == ("btrfs", "/dev/loop3", "/data")


def test_subvolume_of() -> None:
    assert subvolume_of("defaults,subvol=data") == "/data"
    assert subvolume_of("subvol=/a/b/,ro") == "/a/b"
    assert subvolume_of("defaults") == ""
