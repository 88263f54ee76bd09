"""The docker sync driver: the images of the service's containers, in the targets' engine.

For each target: ask which images and layer chains its engine for the service
already holds; an image it holds is skipped; for the others, ``docker save`` here,
drop from the archive the layers the target has (``layers.py``), stream the rest
over ssh into ``docker load`` in the target's engine, then verify the image id
there. When a reduced archive does not load, the whole image is sent, and the
reason logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiodocker

from daemon.resources.base import ResourceError, StatusReport
from daemon.resources.container_docker.driver import Driver as Container
from daemon.resources.container_docker.engine import API_TIMEOUT, Engine, EngineError, engine_for
from daemon.resources.status import Status
from daemon.restore.pending import RestoreError, retag
from daemon.restore.points import Entry
from daemon.sync import receive
from daemon.sync.base import SyncDriver, TransferResult, TransferSkipped
from daemon.sync.docker.layers import (
    STEP,
    archive_layers,
    chain_ids,
    omittable,
    prefix_archive,
    reduce_archive,
    step_plan,
)
from daemon.sync.progress import Progress
from daemon.sync.stamps import Stamp
from daemon.sync.transport import Peers, SourceFailed, TransportError
from daemon.system import mounts
from daemon.system.command import CommandError, run

log = logging.getLogger("ferry.sync")
PEER_TIMEOUT = 300.0
POINT_REPO = "ferry-restore"
STEP_REPO = "ferry-step"  # the prefixes of an image sent in steps, on the target
SAVE_TIMEOUT = 1800.0
CHUNK = 256 * 1024


@dataclass(frozen=True)
class LocalImage:
    ref: str  # as the container resource names it
    id: str
    diff_ids: list[str]
    size: int


class Driver(SyncDriver):
    """Images of the service's docker containers, replicated layer by layer."""

    moves_live_data = False  # images do not change while the service runs

    def label(self) -> str:
        return (
            f"images of {', '.join(self.image_refs()) or 'no container'} on {' '.join(self.pools)}"
        )

    def image_refs(self) -> list[str]:
        refs = []
        for resource in self.instance.resources.values():
            if (
                isinstance(resource, Container)
                and not resource.disabled
                and resource.image not in refs
            ):
                refs.append(resource.image)
        return refs

    _probed: dict[str, dict[str, Any]]
    _receiving: set[str]  # targets that loaded through a receive mount: to release
    _engines: dict[str, str]  # target -> its engine's address, as its probe said
    _steps: dict[str, list[str]]  # target -> the tags of the steps it holds

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._probed = {}
        self._receiving = set()
        self._engines = {}
        self._steps = {}

    def engine(self) -> Engine:
        return engine_for(self.state_dir, self.instance.value("DEFAULT", "docker_data_dir"))

    def _missing_path(self) -> Path:
        return self.sync_dir / "missing.json"

    async def status(self) -> StatusReport:
        report = await super().status()
        try:
            missing = json.loads(self._missing_path().read_text())
        except (OSError, ValueError):
            missing = {}
        lacking = {t: imgs for t, imgs in missing.items() if imgs and t in self.targets()}
        if lacking and report.status in (Status.UP, Status.DOWN, Status.NA):
            report.log.insert(
                0, "warn: " + "; ".join(f"{t} lacks {', '.join(i)}" for t, i in lacking.items())
            )
            report.status = Status.WARN
        return report

    async def local_images(self) -> list[LocalImage]:
        engine = self.engine()
        try:
            await engine.ensure_started()
        except EngineError as exc:
            raise ResourceError(str(exc)) from None
        images = []
        async with asyncio.timeout(API_TIMEOUT), engine.client() as docker:
            for ref in self.image_refs():
                try:
                    data = await docker.images.inspect(ref)
                except aiodocker.DockerError as exc:
                    raise ResourceError(f"image {ref} is not in {engine.describe()}: {exc.message}")
                images.append(
                    LocalImage(ref, data["Id"], list(data["RootFS"]["Layers"]), int(data["Size"]))
                )
        return images

    def _peer_argv(self, *words: str) -> list[str]:
        return self.remote_argv("sync", "docker-peer", "--rid", self.rid, "--", *words)

    def _load_argv(self, target: str) -> list[str]:
        """``docker load`` into the engine the target's probe named (started by it), with no
        Python started there; else ``ferry ... docker-peer load``, which finds it."""
        url = self._engines.get(target)
        return ["docker", "-H", url, "load"] if url else self._peer_argv("load")

    async def probe(self, target: str, peers: Peers) -> dict[str, Any]:
        """The target's instance status and what its engine holds, in one call (its ferryd
        answers when this runs in ferryd, else one ssh call)."""
        try:
            answer = await self.daemon_call(target, peers, "have")
            if answer is None:
                argv = self._peer_argv("have", self.instance.node)
                result = await peers.run(target, argv, timeout=PEER_TIMEOUT)
                if not result.ok:
                    error = result.stderr.strip() or "docker-peer have failed"
                    raise ResourceError(f"{target}: {error}")
                answer = json.loads(result.stdout)
            data = dict(answer)
            if not all(key in data for key in ("images", "chains", "resources")):
                raise KeyError("images, chains or resources")
        except (ValueError, KeyError, TypeError) as exc:
            raise ResourceError(f"{target}: unreadable answer: {exc}") from None
        self._probed[target] = data
        if data.get("engine"):
            self._engines[target] = str(data["engine"])
        self._steps[target] = [str(t) for t in data.get("steps") or []]
        if data.get("receive_mount"):
            self._receiving.add(target)
        return data

    async def clear_leftovers(self) -> None:
        await peer_release(self)  # the engine and receive mount of a killed transfer

    async def finish_target(self, target: str, peers: Peers) -> None:
        """Stop the engine started on a receive mount of the target, and unmount it."""
        if target not in self._receiving:
            return
        self._receiving.discard(target)
        if await self.daemon_call(target, peers, "release") is not None:
            return
        result = await peers.run(target, self._peer_argv("release"), timeout=PEER_TIMEOUT)
        if not result.ok:
            log.warning("%s %s: %s: release failed: %s", self.instance.name, self.rid, target,
                        result.stderr.strip()[-300:])  # fmt: skip

    async def peer_verb(self, verb: str, sender: str) -> dict[str, Any]:
        """have and release, asked through the daemons (see SyncDriver.daemon_call)."""
        if verb == "have":
            return await peer_have(self, sender)
        if verb == "release":
            await peer_release(self)
            return {}
        return await super().peer_verb(verb, sender)

    # Restore points: the image ids, tagged so that no prune removes them ----------------

    def point_tag(self, entry_name: str, index: int) -> str:
        stamp = entry_name.replace("-", "").replace(":", "").lower()
        return f"{POINT_REPO}/{self.instance.name}:{self.rid.replace('#', '-')}-{stamp}-{index}"

    async def point_entry(self, name: str, stamp: Stamp) -> Entry | None:
        engine = _engine_here(self)
        try:
            await engine.ensure_started()
        except EngineError as exc:
            raise ResourceError(str(exc)) from None
        images: dict[str, str] = {}
        async with asyncio.timeout(API_TIMEOUT), engine.client() as docker:
            for index, ref in enumerate(self.image_refs()):
                try:
                    image_id = (await docker.images.inspect(ref))["Id"]
                except aiodocker.DockerError:
                    continue  # not here (yet): the point lacks it, the status says so
                repo, tag = self.point_tag(name, index).rsplit(":", 1)
                await docker.images.tag(image_id, repo, tag=tag)
                images[ref] = image_id
        if not images:
            return None
        return Entry(name, self.rid, "images", "", stamp.started, images=images)

    async def drop_entry(self, entry: Entry) -> None:
        """Untag: the engine deletes an image once no tag and no container holds it."""
        engine = _engine_here(self)
        try:
            await engine.ensure_started()
        except EngineError as exc:
            raise ResourceError(str(exc)) from None
        async with asyncio.timeout(API_TIMEOUT), engine.client() as docker:
            for index in range(len(self.image_refs()) + len(entry.images)):
                try:
                    await docker.images.delete(self.point_tag(entry.name, index))
                except aiodocker.DockerError as exc:
                    if exc.status != 404:
                        log.info("%s %s: %s kept: %s", self.instance.name, self.rid,
                                 self.point_tag(entry.name, index), exc.message)  # fmt: skip

    async def restore_entry(self, entry: Entry) -> None:
        """Tag each container's image ref to the point's image (the engine keeps both)."""
        try:
            await retag(_engine_here(self), entry.images)
        except RestoreError as exc:
            raise ResourceError(str(exc)) from None

    async def measure_entries(self, entries: list[Entry]) -> dict[str, int]:
        """The bytes of the images a point alone holds (not in the next newer point)."""
        engine = _engine_here(self)
        if not await engine.ping():
            return {}
        sizes: dict[str, int] = {}
        async with asyncio.timeout(API_TIMEOUT), engine.client() as docker:
            known: dict[str, int] = {}
            for index, entry in enumerate(entries):
                newer = (
                    set(entries[index + 1].images.values()) if index + 1 < len(entries) else set()
                )
                total = 0
                for image_id in set(entry.images.values()) - newer:
                    if image_id not in known:
                        try:
                            known[image_id] = int((await docker.images.inspect(image_id))["Size"])
                        except aiodocker.DockerError:
                            known[image_id] = 0
                    total += known[image_id]
                sizes[entry.name] = total
        return sizes

    async def check_target(self, target: str, peers: Peers) -> None:
        error = (self._probed.get(target) or {}).get("engine_error")
        if error:
            raise TransferSkipped(f"no engine for the service on {target}: {error}")

    async def target_holdings(self, target: str, peers: Peers) -> dict[str, Any]:
        """What the target's engine holds: from this sync's probe, else asked anew."""
        return self._probed.pop(target, None) or await self.probe(target, peers)

    async def transfer(
        self, target: str, full: bool, peers: Peers, progress: Progress
    ) -> TransferResult:
        images = await self.local_images()
        have = await self.target_holdings(target, peers)
        present, chains = set(have["images"]), set(have["chains"])
        todo = [img for img in images if full or img.id not in present]
        progress.total = sum(img.size for img in todo) or None
        moved, wire_bytes, reasons, any_full = 0, 0, [], False
        if not todo:
            self._record_missing(target, [])
            return TransferResult(0, "incremental", f"{target} already holds every image")
        for image in todo:
            skip = set() if full else omittable(image.diff_ids, chains)
            sent, wire, whole, reason = await self._send_image(image, skip, target, peers, progress)
            moved += sent
            wire_bytes += wire
            any_full = any_full or whole
            if reason:
                reasons.append(reason)
        after = await self.target_holdings(target, peers)
        missing = [img.ref for img in images if img.id not in set(after["images"])]
        self._record_missing(target, missing)
        if missing:
            raise ResourceError(f"{target} still lacks {', '.join(missing)} after loading")
        mode = "full" if any_full else "incremental"
        return TransferResult(moved, mode, "; ".join(reasons), wire_bytes=wire_bytes)

    def _record_missing(self, target: str, missing: list[str]) -> None:
        path = self._missing_path()
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            data = {}
        data[target] = missing
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data))

    async def _send_image(
        self, image: LocalImage, skip: set[str], target: str, peers: Peers, progress: Progress
    ) -> tuple[int, int, bool, str]:
        """Send one image; returns (data bytes, bytes on the wire, whole image?, reason).

        An image whose missing layers weigh more than a step goes in steps (layers.py:
        step_plan): a prefix of its layers per load, so that a link cut in the middle costs
        the step it cut, not the image. Else a whole image streams from docker save into
        the target's docker load; with layers on the target, a reduced archive goes."""
        had = len({d for d in image.diff_ids if d in skip})  # layers the target holds
        missing = [d for d in image.diff_ids if d not in skip]
        stepped = target in self._engines and image.size >= STEP and len(set(missing)) >= 2
        if not skip and not stepped:
            ok, sent, wire, error = await self._stream(image.ref, target, peers, progress)
            if not ok:
                raise ResourceError(f"{target}: docker load of {image.ref} failed: {error}")
            return sent, wire, True, f"{image.ref}: whole image (no layer in common)"
        with tempfile.TemporaryDirectory(dir=self._spool_dir()) as tmp:
            saved = Path(tmp) / "image.tar"
            await self._save(image.ref, saved)
            sent = wire = 0
            made: list[str] = []  # the steps' tags
            if stepped:
                skip, sent, wire, made = await self._load_steps(
                    image, saved, skip, target, peers, progress
                )
            steps = f" in {len(made) + 1} steps" if made else ""
            reduced = Path(tmp) / "reduced.tar"
            await asyncio.to_thread(reduce_archive, saved, reduced, skip)
            ok, more, more_wire, error = await self._load(reduced, target, peers, progress)
            sent, wire = sent + more, wire + more_wire
            if ok:
                await self._forget_steps(image, target, peers, made)
                whole = not had
                said = f"sent {len(set(missing))} layer(s), {had} already on {target}"
                said = "whole image" if whole else said
                return sent, wire, whole, f"{image.ref}: {said}{steps}"
            log.warning(
                "%s %s -> %s: reduced archive of %s did not load (%s): sending it whole",
                self.instance.name, self.rid, target, image.ref, error,
            )  # fmt: skip
            ok, more, more_wire, error = await self._load(saved, target, peers, progress)
            if not ok:
                raise ResourceError(f"{target}: docker load of {image.ref} failed: {error}")
            return (
                sent + more,
                wire + more_wire,
                True,
                f"{image.ref}: whole image (reduced archive refused)",
            )

    def _step_tag(self, image: LocalImage, upto: int) -> str:
        return f"{STEP_REPO}/{self.instance.name}:{self._step_prefix(image)}{upto}"

    def _step_prefix(self, image: LocalImage) -> str:
        return f"{self.rid.replace('#', '-')}-{image.id.removeprefix('sha256:')[:12]}-"

    async def _load_steps(
        self,
        image: LocalImage,
        saved: Path,
        skip: set[str],
        target: str,
        peers: Peers,
        progress: Progress,
    ) -> tuple[set[str], int, int, list[str]]:
        """Load the prefixes of step_plan, each tagged so that no prune removes it: (the
        layers now on the target, data bytes, wire bytes, the tags of the loads)."""
        layers = await asyncio.to_thread(archive_layers, saved)
        cuts = step_plan(layers, skip)
        sent = wire = 0
        made = []
        for upto in cuts:
            part = saved.with_name(f"step-{upto}.tar")
            made.append(self._step_tag(image, upto))
            await asyncio.to_thread(prefix_archive, saved, part, upto, skip, made[-1])
            ok, more, more_wire, error = await self._load(part, target, peers, progress)
            part.unlink()
            if not ok:
                raise ResourceError(f"{target}: docker load of {image.ref} (step) failed: {error}")
            sent, wire = sent + more, wire + more_wire
            skip = skip | {diff for diff, _ in layers[:upto]}
        return skip, sent, wire, made

    async def _forget_steps(
        self, image: LocalImage, target: str, peers: Peers, made: list[str]
    ) -> None:
        """The image is whole on the target: untag its steps there, those this run made and
        those an interrupted run left (the layers stay: the image holds them)."""
        prefix = f"{STEP_REPO}/{self.instance.name}:{self._step_prefix(image)}"
        tags = sorted({*made, *(t for t in self._steps.get(target, []) if t.startswith(prefix))})
        url = self._engines.get(target)
        if not tags or url is None:
            return
        try:
            result = await peers.run(target, ["docker", "-H", url, "rmi", *tags],
                                     timeout=PEER_TIMEOUT)  # fmt: skip
            error = "" if result.ok else result.stderr.strip()[-300:]
        except TransportError as exc:
            error = str(exc)
        if error:  # the next whole send of the image removes them
            log.warning("%s %s: %s: steps of %s left tagged: %s", self.instance.name, self.rid,
                        target, image.ref, error)  # fmt: skip

    def _spool_dir(self) -> str:
        path = self.sync_dir / "spool"
        path.mkdir(parents=True, exist_ok=True)
        return str(path)

    async def _save(self, ref: str, dest: Path) -> None:
        engine = self.engine()
        try:
            await run(
                ["docker", "-H", engine.url, "save", "-o", str(dest), ref], timeout=SAVE_TIMEOUT
            )
        except CommandError as exc:
            raise ResourceError(f"docker save {ref}: {exc}") from None

    async def _stream(
        self, ref: str, target: str, peers: Peers, progress: Progress
    ) -> tuple[bool, int, int, str]:
        """``docker save`` of ref into the target's load: as _load, without a spool file."""
        start = progress.moved
        save = ["docker", "-H", self.engine().url, "save", ref]
        try:
            result = await peers.send_output(
                target, save, self._load_argv(target), progress.add, self.wire(target)
            )
        except SourceFailed as exc:
            raise ResourceError(str(exc)) from None
        error = "" if result.ok else (result.stderr.strip() or result.stdout.strip())[-500:]
        return result.ok, progress.moved - start, result.wire_bytes, error

    async def _load(
        self, archive: Path, target: str, peers: Peers, progress: Progress
    ) -> tuple[bool, int, int, str]:
        """Stream an archive into the target's engine: (loaded?, data bytes, bytes on the
        wire, error)."""
        start = progress.moved

        async def chunks() -> AsyncIterator[bytes]:
            with archive.open("rb") as handle:
                while chunk := await asyncio.to_thread(handle.read, CHUNK):
                    yield chunk

        result = await peers.pipe_to(
            target, self._load_argv(target), chunks(), progress.add, self.wire(target)
        )
        error = "" if result.ok else (result.stderr.strip() or result.stdout.strip())[-500:]
        return result.ok, progress.moved - start, result.wire_bytes, error


async def peer_have(driver: Driver, sender: str) -> dict[str, Any]:
    """Target side: the instance status, and the images and layer chains of the engine.

    When the engine for the service cannot run here because its filesystem is not
    mounted (the primary nodes, on the way back after a DR activation), that filesystem
    is mounted for the receive (daemon/sync/receive.py) and the service's engine runs on
    it until release. When that cannot be either, the answer says why in
    ``engine_error``, and the sender skips this target with that reason.
    """
    state = (await driver.instance.status()).as_dict()
    engine = driver.engine()
    receiving = False
    try:
        await engine.ensure_started()
    except EngineError as exc:
        received, why = await _receive_engine(driver, state["resources"], sender)
        if received is None:
            error = f"{exc} ({why})" if why else str(exc)
            return {"images": [], "chains": [], "engine_error": error, "receive_mount": False,
                    **state}  # fmt: skip
        engine, receiving = received, True
    images: list[str] = []
    chains: set[str] = set()
    steps: list[str] = []  # the tags of images sent in steps, not yet whole here
    async with asyncio.timeout(API_TIMEOUT), engine.client() as docker:
        for summary in await docker.images.list(all=True):
            data = await docker.images.inspect(summary["Id"])
            images.append(data["Id"])
            chains.update(chain_ids(data["RootFS"].get("Layers") or []))
            steps += [t for t in data.get("RepoTags") or [] if t.startswith(f"{STEP_REPO}/")]
    return {"images": images, "chains": sorted(chains), "receive_mount": receiving,
            "engine": engine.url, "steps": steps, **state}  # fmt: skip


def _data_dir(driver: Driver) -> str:
    return str(driver.instance.value("DEFAULT", "docker_data_dir") or "")


async def _receive_engine(
    driver: Driver, resources: dict[str, Any], sender: str
) -> tuple[Engine | None, str]:
    """The service's engine on a receive mount of its data dir's filesystem, started."""
    data_dir = _data_dir(driver)
    fs = receive.provider(driver, data_dir) if data_dir else None
    if fs is None or mounts.mounted_at(fs.mnt) is not None:
        return None, ""  # nothing to mount, or mounted already: the error stands
    path, why = await receive.mount_for(driver, data_dir, fs, resources, sender)
    if path is None:
        return None, why
    engine = replace(driver.engine(), data_root=path)
    try:
        await engine.ensure_started()
    except EngineError as exc:
        await receive.release(driver, fs)
        return None, f"on the receive mount: {exc}"
    return engine, ""


def _engine_here(driver: Driver) -> Engine:
    """The service's engine, on the receive mount while there is one."""
    data_dir = _data_dir(driver)
    fs = receive.provider(driver, data_dir) if data_dir else None
    if fs is None or not receive.mounted(driver):
        return driver.engine()
    rel = os.path.relpath(os.path.normpath(data_dir), fs.mnt)
    return replace(driver.engine(), data_root=os.path.normpath(
        os.path.join(receive.receive_path(driver), rel)))  # fmt: skip


async def peer_engine_url(driver: Driver) -> str:
    """Target side: the engine to load into, started when needed."""
    engine = _engine_here(driver)
    try:
        await engine.ensure_started()
    except EngineError as exc:
        raise ResourceError(str(exc)) from None
    return str(engine.url)


async def peer_release(driver: Driver) -> None:
    """Target side: stop the engine of a receive mount, then unmount it."""
    if not receive.mounted(driver):
        return
    try:
        await _engine_here(driver).stop()
    except EngineError as exc:
        raise ResourceError(str(exc)) from None
    await receive.release(driver, receive.provider(driver, _data_dir(driver)))


def for_peer(driver: object) -> Driver:
    if not isinstance(driver, Driver):
        raise ResourceError("not a docker sync resource")
    return driver
