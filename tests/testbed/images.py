"""The seed's images, built from busybox-static as a ``docker load`` archive.

No registry is reachable. Rather than ``docker import`` (which stamps the
current time, so every engine would get a different image id), the archive is
written here byte for byte: fixed timestamps and owners, so every node, every
run and every machine with the same busybox gets the same image ids.

* ``google/pause:latest``: one layer (busybox); sleeps until SIGTERM.
* ``opensvc/nginx:build5``: the same base layer plus one with /www/index.html;
  busybox httpd in the foreground on port 80.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .procs import run

BUSYBOX = Path("/bin/busybox")
EPOCH = 1704067200  # 2024-01-01T00:00:00Z, the timestamp of every file
CREATED = "2024-01-01T00:00:00Z"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PAUSE = "google/pause:latest"
NGINX = "opensvc/nginx:build5"
SEED_IMAGES = (PAUSE, NGINX)
INDEX_HTML = b"<html><body><h1>ferry testbed: opensvc/nginx:build5</h1></body></html>\n"
_PAUSE_CMD = "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"
_NGINX_CMD = "trap 'exit 0' TERM INT; httpd -f -p 80 -h /www & wait $!"


def _info(name: str, kind: bytes = tarfile.REGTYPE, mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = kind, mode, EPOCH
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def _add_file(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = _info(name, mode=mode)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _tar(build: Callable[[tarfile.TarFile], None]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        build(tar)
    return buf.getvalue()


def _applets() -> list[str]:
    out = run([str(BUSYBOX), "--list"], timeout=30).stdout.split()
    return sorted(name for name in out if name != "busybox" and "/" not in name)


def base_layer() -> bytes:
    """Root filesystem: /bin/busybox, a symlink per applet, the usual dirs."""
    binary = BUSYBOX.read_bytes()

    def build(tar: tarfile.TarFile) -> None:
        for name, mode in (("bin", 0o755), ("dev", 0o755), ("etc", 0o755), ("proc", 0o555)):
            tar.addfile(_info(name, tarfile.DIRTYPE, mode))
        for name, mode in (("root", 0o700), ("sys", 0o555), ("tmp", 0o1777), ("var", 0o755)):
            tar.addfile(_info(name, tarfile.DIRTYPE, mode))
        _add_file(tar, "bin/busybox", binary, 0o755)
        for applet in _applets():
            link = _info(f"bin/{applet}", tarfile.SYMTYPE, 0o777)
            link.linkname = "busybox"
            tar.addfile(link)
        _add_file(tar, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
        _add_file(tar, "etc/group", b"root:x:0:\n")

    return _tar(build)


def www_layer() -> bytes:
    """The nginx image's own layer: /www/index.html."""

    def build(tar: tarfile.TarFile) -> None:
        tar.addfile(_info("www", tarfile.DIRTYPE, 0o755))
        _add_file(tar, "www/index.html", INDEX_HTML)

    return _tar(build)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def _config(layers: list[bytes], cmd: list[str], extra: dict[str, Any]) -> bytes:
    config = {
        "architecture": _arch(),
        "os": "linux",
        "created": CREATED,
        "config": {"Env": [PATH_ENV], "Cmd": cmd, "WorkingDir": "/", **extra},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{_digest(lay)}" for lay in layers]},
        "history": [{"created": CREATED, "created_by": "ferry testbed"} for _ in layers],
    }
    return json.dumps(config, sort_keys=True, separators=(",", ":")).encode()


def build_archive(path: Path) -> dict[str, str]:
    """Write the ``docker load`` archive of both images; return tag -> image id."""
    base, www = base_layer(), www_layer()
    images: dict[str, tuple[list[bytes], list[str], dict[str, Any]]] = {
        PAUSE: ([base], ["/bin/sh", "-c", _PAUSE_CMD], {}),
        NGINX: ([base, www], ["/bin/sh", "-c", _NGINX_CMD], {"ExposedPorts": {"80/tcp": {}}}),
    }
    manifest, files, ids = [], {}, {}
    for tag, (layers, cmd, extra) in images.items():
        config = _config(layers, cmd, extra)
        ids[tag] = f"sha256:{_digest(config)}"
        files[f"{_digest(config)}.json"] = config
        for layer in layers:
            files[f"{_digest(layer)}/layer.tar"] = layer
        manifest.append(
            {
                "Config": f"{_digest(config)}.json",
                "RepoTags": [tag],
                "Layers": [f"{_digest(layer)}/layer.tar" for layer in layers],
            }
        )
    files["manifest.json"] = json.dumps(manifest, sort_keys=True).encode()

    def build(tar: tarfile.TarFile) -> None:
        for name in sorted(files):
            if "/" in name:
                tar.addfile(_info(name.split("/")[0], tarfile.DIRTYPE, 0o755))
            _add_file(tar, name, files[name])

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(_tar(build))
    os.replace(tmp, path)
    return ids
