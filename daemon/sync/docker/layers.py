"""Docker image archives: layer chain ids, and an archive reduced to the layers a target lacks.

``docker load`` looks a layer up by its chain id before it opens the layer's file
in the archive: a layer whose chain the target already holds needs no bytes. So the
archive sent carries the manifest, the image config and only the missing layers.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO


def chain_ids(diff_ids: Iterable[str]) -> list[str]:
    """Chain id of each layer: chain(1) = diff(1), chain(n) = sha256(chain(n-1) + ' ' + diff(n))."""
    chains: list[str] = []
    for diff in diff_ids:
        if not chains:
            chains.append(diff)
        else:
            digest = hashlib.sha256(f"{chains[-1]} {diff}".encode()).hexdigest()
            chains.append(f"sha256:{digest}")
    return chains


def omittable(diff_ids: list[str], present_chains: set[str]) -> set[str]:
    """Diff ids whose every position in the image is a chain the target already holds."""
    chains = chain_ids(diff_ids)
    result = set()
    for diff in set(diff_ids):
        positions = [i for i, d in enumerate(diff_ids) if d == diff]
        if all(chains[i] in present_chains for i in positions):
            result.add(diff)
    return result


@dataclass
class Reduction:
    kept: int = 0
    omitted: int = 0
    kept_bytes: int = 0
    omitted_bytes: int = 0


def layer_digests(archive: tarfile.TarFile) -> dict[str, str]:
    """Layer file -> diff id, from the archive's manifest and image config (no hashing)."""
    try:
        manifest = json.load(_member(archive, "manifest.json"))[0]
        config = json.load(_member(archive, manifest["Config"]))
        layers, diffs = list(manifest["Layers"]), list(config["rootfs"]["diff_ids"])
    except (KeyError, IndexError, ValueError, TypeError):
        return {}
    return dict(zip(layers, diffs, strict=False)) if len(layers) == len(diffs) else {}


def _member(archive: tarfile.TarFile, name: str) -> IO[bytes]:
    handle = archive.extractfile(name)
    if handle is None:
        raise KeyError(name)
    return handle


def reduce_archive(source: Path, dest: Path, skip_diff_ids: set[str]) -> Reduction:
    """Copy a ``docker save`` archive without the layer files whose digest is in skip_diff_ids.

    The manifest says which file is which layer; a file it does not name is hashed.
    """
    stats = Reduction()
    with tarfile.open(source, "r") as src, tarfile.open(dest, "w") as out:
        digests = layer_digests(src)
        for member in src:
            if member.isfile() and member.name.endswith("layer.tar"):
                digest = digests.get(member.name)
                if digest is None:
                    handle = src.extractfile(member)
                    assert handle is not None
                    digest = f"sha256:{_sha256_of(handle)}"
                if digest in skip_diff_ids:
                    stats.omitted += 1
                    stats.omitted_bytes += member.size
                    continue
                out.addfile(member, src.extractfile(member))
                stats.kept += 1
                stats.kept_bytes += member.size
                continue
            out.addfile(member, src.extractfile(member) if member.isfile() else None)
    return stats


def _sha256_of(handle: IO[bytes]) -> str:
    digest = hashlib.sha256()
    while chunk := handle.read(1024 * 1024):
        digest.update(chunk)
    return digest.hexdigest()


# Steps: an image sent in loads of a prefix of its layers --------------------------------------

STEP = 128 * 1024 * 1024  # bytes of missing layers per load, at least


def archive_layers(source: Path) -> list[tuple[str, int]]:
    """The image's layers in order: (diff id, bytes of its layer file), from its archive."""
    with tarfile.open(source, "r") as archive:
        digests = layer_digests(archive)
        sizes = {m.name: m.size for m in archive if m.isfile() and m.name in digests}
    return [(diff, sizes.get(name, 0)) for name, diff in digests.items()]


def step_plan(layers: list[tuple[str, int]], present: set[str], step: int = STEP) -> list[int]:
    """Where to cut an image's load into steps: the lengths of the layer prefixes to load
    first, each carrying at least ``step`` bytes of layers the target lacks (``present``:
    diff ids it holds). The last layer is never a cut: the image's own load ends the list.
    A load is all or nothing (docker unpacks the whole archive before it registers a
    layer); a prefix loaded stays, so a cut link costs at most the step it cut."""
    cuts: list[int] = []
    carried = 0
    for index, (diff, size) in enumerate(layers[:-1]):
        if diff not in present:
            carried += size
        if carried >= step:
            cuts.append(index + 1)
            carried = 0
    return cuts


def prefix_archive(source: Path, dest: Path, upto: int, skip: set[str], tag: str) -> Reduction:
    """An archive of the image made of its first ``upto`` layers, tagged ``tag``: its
    config's layer list and history cut to them (a new image id), without the layer files
    in skip (the target has them, or an earlier step sent them)."""
    stats = Reduction()
    with tarfile.open(source, "r") as src, tarfile.open(dest, "w") as out:
        manifest = json.load(_member(src, "manifest.json"))[0]
        config = json.load(_member(src, manifest["Config"]))
        files = list(manifest["Layers"])[:upto]
        diffs = list(config["rootfs"]["diff_ids"])[:upto]
        config["rootfs"]["diff_ids"] = diffs
        history, layers = [], 0
        for entry in config.get("history") or []:
            if layers >= upto:
                break
            history.append(entry)
            layers += 0 if entry.get("empty_layer") else 1
        config["history"] = history
        raw = json.dumps(config).encode()
        name = f"{hashlib.sha256(raw).hexdigest()}.json"
        entry = {"Config": name, "RepoTags": [tag], "Layers": files}
        for path, data in ((name, raw), ("manifest.json", json.dumps([entry]).encode())):
            info = tarfile.TarInfo(path)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
        kept = {f for f, d in zip(files, diffs, strict=True) if d not in skip}
        for member in src:
            if member.isfile() and member.name in files:
                if member.name in kept:
                    out.addfile(member, src.extractfile(member))
                    stats.kept += 1
                    stats.kept_bytes += member.size
                else:
                    stats.omitted += 1
                    stats.omitted_bytes += member.size
    return stats
