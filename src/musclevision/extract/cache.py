"""The keypoint cache: one ``.npz`` per video plus an append-only manifest, keyed by extractor settings.

Layout of ``<cache_dir>``::

    cache.json          format version + the extractor settings every clip was made with
    manifest.jsonl      one JSON record per finished video (ok / partial / failed); last one wins
    clips/<id>.npz      image [T,33,4], world [T,33,3], timestamps_ms [T]
    logs/               native MediaPipe/ffmpeg output of the extractor workers

Crash safety: a clip file is written to a temp name and renamed, *then* its record is
appended under an exclusive lock, so a kill -9 at any point leaves either a finished video or
one that the next run redoes. Several processes (SLURM array shards) can write one cache.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import time
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from musclevision.extract.pose_bundle import sha256_file

FORMAT_VERSION = 1
STATUSES = ("ok", "partial", "failed")


class CacheError(RuntimeError):
    """The cache cannot be used as asked; the message says what to do instead."""


@dataclass(frozen=True)
class ClipRecord:
    video_id: str
    label: str
    group: str
    source: str
    status: str  # ok | partial (frames kept, file damaged) | failed (nothing usable)
    error: str | None
    frames_declared: int
    frames_decoded: int
    frames_detected: int
    detection_rate: float
    fps: float
    width: int
    height: int
    sha256: str
    size: int
    mtime_ns: int
    seconds: float
    finished: str
    orientations: dict | None = None  # frames with a person per orientation, {"0": n, "90": m} (degrees clockwise)
    landmarker_calls: int | None = None  # frames + rotated retries (the extraction cost)
    people: dict | None = None  # with num_poses > 1: most people in a frame, people followed, frames kept per person

    @classmethod
    def from_json(cls, data: dict) -> ClipRecord:
        return cls(**{f.name: data.get(f.name) for f in fields(cls)})


@dataclass
class Clip:
    record: ClipRecord
    image: np.ndarray  # [T, 33, 4] float32, NaN rows where no person was found
    world: np.ndarray  # [T, 33, 3] float32
    timestamps_ms: np.ndarray  # [T] int64


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class KeypointCache:
    """Read (and, for the extractor, write) a keypoint cache folder."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        meta = self.path / "cache.json"
        if not meta.is_file():
            raise CacheError(
                f"{self.path} is not a keypoint cache (no cache.json); build it with "
                f"`musclevision-extract video_root=<videos> cache_dir={self.path}`"
            )
        info = json.loads(meta.read_text())
        if info.get("format_version") != FORMAT_VERSION:
            raise CacheError(f"{self.path} has cache format {info.get('format_version')}, this version reads {FORMAT_VERSION}")
        self.settings: dict = info["extractor"]
        self._records: dict[str, ClipRecord] | None = None
        self._manifest_stamp = None

    # -- creation -----------------------------------------------------------------------------
    @classmethod
    def open_for_writing(cls, path: str | os.PathLike, settings: dict, rebuild: bool = False) -> KeypointCache:
        """Create the cache, or reopen one made with exactly ``settings``; refuse a mismatch."""
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise CacheError(f"cache_dir={path} is a file, not a folder; choose a folder for the keypoint cache")
        if rebuild and path.exists():
            if not (path / "cache.json").is_file() and any(path.iterdir()):
                raise CacheError(f"cache_dir={path} is a non-empty folder that is not a keypoint cache; refusing to delete it")
            shutil.rmtree(path)
        path.mkdir(parents=True, exist_ok=True)
        meta = path / "cache.json"
        if not meta.exists():
            payload = {"format_version": FORMAT_VERSION, "extractor": settings, "created": now_iso()}
            _write_atomic(meta, json.dumps(payload, indent=2).encode(), exclusive=True)
        cache = cls(path)
        cache.remove_stale_temporaries()
        if cache.settings != settings:
            diff = ", ".join(
                f"{k}: cache has {cache.settings.get(k)!r}, asked {settings.get(k)!r}"
                for k in sorted(set(cache.settings) | set(settings))
                if cache.settings.get(k) != settings.get(k)
            )
            raise CacheError(
                f"cache_dir={path} was built with other extractor settings ({diff}). Mixing them would "
                "make clips incomparable: use another cache_dir, or pass rebuild=true to delete and rebuild it."
            )
        return cache

    def remove_stale_temporaries(self, older_than_s: float = 600.0) -> None:
        """Delete temp files a killed writer left behind (old enough that no live shard still writes them)."""
        cutoff = time.time() - older_than_s
        for tmp in self.path.glob("clips/**/*.tmp"):
            try:
                if tmp.stat().st_mtime < cutoff:
                    tmp.unlink()
            except FileNotFoundError:
                pass

    # -- reading ------------------------------------------------------------------------------
    def records(self) -> dict[str, ClipRecord]:
        """Latest record per video id (re-read when the manifest changed)."""
        manifest = self.path / "manifest.jsonl"
        stamp = (manifest.stat().st_mtime_ns, manifest.stat().st_size) if manifest.exists() else None
        if self._records is None or stamp != self._manifest_stamp:
            records: dict[str, ClipRecord] = {}
            if stamp is not None:
                for line in manifest.read_text().splitlines():
                    try:
                        record = ClipRecord.from_json(json.loads(line))
                    except (json.JSONDecodeError, TypeError):
                        continue  # a line cut short by a kill: that video is simply redone
                    records[record.video_id] = record
            self._records, self._manifest_stamp = records, stamp
        return self._records

    def videos(self, labels=None) -> list[ClipRecord]:
        """Usable clips (ok or partial), sorted by id, optionally only those of ``labels``."""
        return [
            r
            for r in sorted(self.records().values(), key=lambda r: r.video_id)
            if r.status in ("ok", "partial") and (labels is None or r.label in labels) and self.clip_path(r.video_id).is_file()
        ]

    def failures(self) -> list[ClipRecord]:
        return [r for r in sorted(self.records().values(), key=lambda r: r.video_id) if r.status == "failed"]

    def clip_path(self, video_id: str) -> Path:
        return self.path / "clips" / f"{video_id}.npz"

    def load(self, video_id: str) -> Clip:
        record = self.records().get(video_id)
        if record is None or record.status == "failed":
            reason = "is not in the cache" if record is None else f"failed to extract: {record.error}"
            raise KeyError(f"{video_id} {reason}")
        with np.load(self.clip_path(video_id)) as data:
            return Clip(record, data["image"], data["world"], data["timestamps_ms"])

    # -- writing ------------------------------------------------------------------------------
    def is_finished(self, video_id: str, size: int, mtime_ns: int, retry_failed: bool = False,
                    path: Path | None = None) -> bool:  # fmt: skip
        """True when this exact source file (same size and mtime, or same content: a copied or
        touched file is not a new video) was already processed."""
        record = self.records().get(video_id)
        if record is None or record.size != size:
            return False
        if record.mtime_ns != mtime_ns and (path is None or not record.sha256 or sha256_file(path) != record.sha256):
            return False
        if record.status == "failed":
            return not retry_failed
        return self.clip_path(video_id).is_file()

    def write(self, record: ClipRecord, image=None, world=None, timestamps_ms=None) -> None:
        if image is not None:
            target = self.clip_path(record.video_id)
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = _create_temp(target.parent, ".npz.tmp")
            try:
                with os.fdopen(fd, "wb") as f:
                    np.savez(f, image=image, world=world, timestamps_ms=timestamps_ms)
                    f.flush()
                    os.fsync(f.fileno())  # the record appended next must never point at a half-written clip
                os.replace(tmp, target)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        line = (json.dumps(asdict(record)) + "\n").encode()
        with open(self.path / "manifest.jsonl", "ab") as f:
            fcntl.flock(f, fcntl.LOCK_EX)  # shards share this file; one whole line at a time
            try:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)


def _create_temp(directory: Path, suffix: str) -> tuple[int, str]:
    """Like ``tempfile.mkstemp`` but with the usual ``0o666 & ~umask`` permissions: mkstemp makes
    the file 0600 and the rename keeps that, so other users of a shared cache could not read it."""
    while True:
        path = os.path.join(directory, f"tmp{secrets.token_hex(6)}{suffix}")
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), path
        except FileExistsError:
            continue


def _write_atomic(path: Path, data: bytes, exclusive: bool = False) -> None:
    fd, tmp = _create_temp(path.parent, ".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        if exclusive:
            try:
                os.link(tmp, path)  # fails if another shard created it first: theirs wins
            except FileExistsError:
                pass
        else:
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
