"""Docker image archives: layer chain ids, and an archive reduced to the layers a target lacks.

``docker load`` looks a layer up by its chain id before it opens the layer's file
in the archive: a layer whose chain the target already holds needs no bytes. So the
archive sent carries the manifest, the image config and only the missing layers.
"""

from __future__ import annotations

import hashlib
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
