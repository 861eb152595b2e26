"""The keypoint cache: one ``.npz`` per video plus an append-only manifest, keyed by extractor settings.

Layout of ``<cache_dir>``::

    cache.json          format version + the extractor settings every clip was made with
    manifest.jsonl      one JSON record per finished video (ok / partial / failed); last one wins
    clips/<id>.npz      image [T,33,4], world [T,33,3], timestamps_ms [T]
    logs/               native MediaPipe/ffmpeg output of the extractor workers
    claims/             one locked file per video being extracted right now (owner pid and host)

Crash safety: a clip file is written to a temp name and renamed, *then* its record (with the
clip file's sha256) is appended under an exclusive lock, starting on a new line, so a kill -9
or a full disk at any point leaves either a finished video or one that the next run redoes.
Every read checks the file against its record; a damaged one is named and redone by the next
extractor run. Several processes (SLURM array shards, two terminals) can write one cache: each
claims a video before extracting it, so they share the work instead of doing it twice.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import secrets
import shutil
import socket
import time
import zipfile
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, unquote

import numpy as np

from musclevision.oserrors import check_writable, describe_write_error
from musclevision.paths import sha256_file
from musclevision.pose.skeleton import NUM_LANDMARKS

FORMAT_VERSION = 1


class CacheError(RuntimeError):
    """The cache cannot be used as asked; the message says what to do instead."""


class DamagedClipError(CacheError):
    """A clip file does not match its manifest record (cut short, overwritten, unreadable)."""


class CacheWriteError(CacheError):
    """The cache folder cannot be written (full disk, read-only); what was finished is kept."""


@dataclass(frozen=True)
class ClipRecord:
    """One row of manifest.jsonl: what the extractor did with one video (status, frame counts, checksums)."""

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
    clip_sha256: str | None = None  # of clips/<id>.npz as written; None in records from before checksums
    orientations: dict | None = None  # frames with a person per view, {"0": n, "90": m, "0x2": k} (degrees clockwise, x zoom-out)
    landmarker_calls: int | None = None  # frames + rotated retries (the extraction cost)
    people: dict | None = None  # with num_poses > 1: most people in a frame, people followed, frames kept per person

    @classmethod
    def from_json(cls, data: dict) -> ClipRecord:
        return cls(**{f.name: data.get(f.name) for f in fields(cls)})


@dataclass
class CachedClip:
    """One video's keypoints as the cache stores them (the data stage turns it into a ``ClipData``)."""

    record: ClipRecord
    image: np.ndarray  # [T, 33, 4] float32, NaN rows where no person was found
    world: np.ndarray  # [T, 33, 3] float32
    timestamps_ms: np.ndarray  # [T] int64


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def settings_diff(cached: dict, asked: dict) -> str:
    """The extractor settings that differ, one ``key: cache has X, asked Y`` each (for the one-line refusals); a
    setting a key leaves out when off is shown as its off value (``zoom_out: cache has 1.0, asked 2.0``)."""
    return ", ".join(f"{k}: cache has {_setting(cached, k)!r}, asked {_setting(asked, k)!r}" for k in _differing(cached, asked))


def matching_options(cached: dict, asked: dict, prefix: str = "pose.") -> str:
    """The options that would ask for the cache's own settings, e.g. ``pose.zoom_out=1.0`` ('' when none can)."""
    from musclevision.extract.landmarker import PoseSettings

    settable = {f.name for f in fields(PoseSettings)} - {"bundle_sha256"}
    keys = _differing(cached, asked)
    if not set(keys) <= settable:
        return ""  # something no option sets (mediapipe version, bundle): only another cache or a rebuild helps
    return " ".join(f"{prefix}{k}={json.dumps(_setting(cached, k)).replace(' ', '')}" for k in keys)


def _setting(settings: dict, key: str):
    from musclevision.extract.landmarker import OFF_WHEN_ABSENT

    return settings.get(key, OFF_WHEN_ABSENT.get(key))


# Settings a key holds only while another one is on (retries need rotations or zoom-out; checks and the rule need several
# people): when one side lacks them, the difference is that other setting's, named on its own.
_DEPENDENT = ("retry_every", "people_check_s", "selector")


def _differing(cached: dict, asked: dict) -> list[str]:
    keys = sorted(k for k in set(cached) | set(asked) if _setting(cached, k) != _setting(asked, k))
    main = [k for k in keys if not (k in _DEPENDENT and (k not in cached or k not in asked))]
    return main or keys


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
        try:
            info = json.loads(meta.read_text())
            version, settings = info.get("format_version"), info["extractor"]
            if not isinstance(settings, dict):
                raise TypeError(f"'extractor' is a {type(settings).__name__}, not a mapping")
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
            why = f"missing key {exc}" if isinstance(exc, KeyError) else f"{type(exc).__name__}: {exc}"
            raise CacheError(
                f"{meta} is damaged or not a keypoint cache's settings file ({why}); restore it, or re-extract the "
                f"cache with `musclevision-extract video_root=<videos> cache_dir={self.path} rebuild=true`"
            ) from None
        if version != FORMAT_VERSION:
            raise CacheError(f"{self.path} has cache format {version}, this version reads {FORMAT_VERSION}")
        self.settings: dict = settings
        self._records: dict[str, ClipRecord] | None = None
        self._manifest_stamp = None

    # -- creation -----------------------------------------------------------------------------
    @classmethod
    def open_for_writing(cls, path: str | os.PathLike, settings: dict, rebuild: bool = False) -> KeypointCache:
        """Create the cache, or reopen one made with exactly ``settings``; refuse a mismatch."""
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise CacheError(f"cache_dir={path} is a file, not a folder; choose a folder for the keypoint cache")
        try:
            if rebuild and path.exists():
                if not (path / "cache.json").is_file() and any(path.iterdir()):
                    raise CacheError(f"cache_dir={path} is a non-empty folder but not a keypoint cache; refusing to delete it")
                shutil.rmtree(path)
            path.mkdir(parents=True, exist_ok=True)
            meta = path / "cache.json"
            if not meta.exists():
                payload = {"format_version": FORMAT_VERSION, "extractor": settings, "created": now_iso()}
                _write_atomic(meta, json.dumps(payload, indent=2).encode(), exclusive=True)
        except OSError as exc:
            raise CacheWriteError(f"cache_dir={path}: {describe_write_error(exc)}") from None
        cache = cls(path)
        cache.remove_stale_temporaries()
        if cache.settings != settings:
            diff, same = settings_diff(cache.settings, settings), matching_options(cache.settings, settings)
            ask = f", ask for the cache's settings ({same})" if same else ""
            raise CacheError(
                f"cache_dir={path} was built with other extractor settings ({diff}). Mixing them would "
                f"make clips incomparable: use another cache_dir{ask}, or pass rebuild=true to delete and rebuild it."
            )
        return cache

    def remove_stale_temporaries(self, older_than_s: float = 600.0) -> None:
        """Delete temp files a killed writer left behind (old enough that no live shard still writes them)."""
        cutoff = time.time() - older_than_s
        for tmp in self.path.glob("clips/**/*.tmp"):
            try:
                if tmp.stat().st_mtime < cutoff:
                    tmp.unlink()
            except OSError:  # gone already, or a read-only cache (which a complete one may be)
                pass

    def check_writable(self, todo: int) -> None:
        """Refuse, before any work, a cache folder that cannot take the ``todo`` videos it lacks."""
        for folder in (self.path, self.path / "clips", self.path / "logs", self.path / "claims"):
            try:
                check_writable(folder)
            except OSError as exc:
                raise CacheWriteError(
                    f"{todo} video{'s' if todo != 1 else ''} to extract, but {describe_write_error(exc, folder)}"
                ) from None

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

    def load(self, video_id: str) -> CachedClip:
        """The clip of ``video_id``, checked against its record; DamagedClipError names a bad file and how to redo it."""
        record = self.records().get(video_id)
        if record is None or record.status == "failed":
            reason = "is not in the cache" if record is None else f"failed to extract: {record.error}"
            raise KeyError(f"{video_id} {reason}")
        clip, why = self._read_clip(record)
        if clip is None:
            raise DamagedClipError(self.damage_message(record, why))
        return clip

    def damage(self, record: ClipRecord) -> str | None:
        """Why the clip file of an ok/partial ``record`` cannot be trusted, or None when it is intact."""
        data, why = self._verified_bytes(record)
        if why is None and not record.clip_sha256:
            why = self._decode(record, data)[1]
        return why

    def _read_clip(self, record: ClipRecord) -> tuple[CachedClip | None, str | None]:
        """(clip, None), or (None, why it cannot be trusted)."""
        data, why = self._verified_bytes(record)
        return (None, why) if why else self._decode(record, data)

    def _verified_bytes(self, record: ClipRecord) -> tuple[bytes | None, str | None]:
        """The clip file's bytes, checked against the record's sha256. Records from before checksums have
        none: their files are checked by decoding them whole, whose zip CRC-32 catches a cut or changed file."""
        try:
            data = self.clip_path(record.video_id).read_bytes()
        except FileNotFoundError:
            return None, "the file is missing"
        except OSError as exc:
            return None, f"unreadable: {exc.strerror}"
        if record.clip_sha256 and hashlib.sha256(data).hexdigest() != record.clip_sha256:
            return None, f"its sha256 differs from the manifest's: cut short or overwritten ({len(data)} bytes)"
        return data, None

    @staticmethod
    def _decode(record: ClipRecord, data: bytes) -> tuple[CachedClip | None, str | None]:
        try:
            with np.load(io.BytesIO(data)) as arrays:
                clip = CachedClip(record, arrays["image"], arrays["world"], arrays["timestamps_ms"])
        except (zipfile.BadZipFile, ValueError, KeyError, EOFError, OSError) as exc:
            return None, f"unreadable ({type(exc).__name__}: {exc})"
        t, n = record.frames_decoded, NUM_LANDMARKS
        if clip.image.shape != (t, n, 4) or clip.world.shape != (t, n, 3) or clip.timestamps_ms.shape != (t,):
            return None, f"its arrays {clip.image.shape} / {clip.world.shape} do not hold the {t} frames of its record"
        return clip, None

    def damage_message(self, record: ClipRecord, why: str) -> str:
        source = Path(record.source)
        # video ids are <Class>/<name>: the videos' root is two levels above the source file.
        root = source.parents[1] if len(source.parents) > 1 else "<videos>"
        return (
            f"{self.clip_path(record.video_id)} is damaged ({why}); redo exactly this entry with "
            f"`musclevision-extract video_root={root} cache_dir={self.path} videos=[{record.video_id}]` "
            "(a run without videos= redoes every damaged entry)"
        )

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
        return self.damage(record) is None  # a damaged or missing clip file is redone

    def write(self, record: ClipRecord, image=None, world=None, timestamps_ms=None) -> ClipRecord:
        """Store one video's result: its clip file (atomically), then its record; returns the record as stored.
        CacheWriteError (full disk, read-only folder) leaves what was stored before intact."""
        target, manifest = self.clip_path(record.video_id), self.path / "manifest.jsonl"
        where = target
        try:
            if image is not None:
                buffer = io.BytesIO()
                np.savez(buffer, image=image, world=world, timestamps_ms=timestamps_ms)
                data = buffer.getvalue()
                record = replace(record, clip_sha256=hashlib.sha256(data).hexdigest())
                target.parent.mkdir(parents=True, exist_ok=True)
                # fsync: the record appended next must never point at a half-written clip.
                _write_atomic(target, data, fsync=True)
            line, where = (json.dumps(asdict(record)) + "\n").encode(), manifest
            with open(manifest, "a+b") as f:
                fcntl.flock(f, fcntl.LOCK_EX)  # shards share this file; one whole line at a time
                try:
                    # A line cut short (full disk, a crash mid-write) must not swallow this record.
                    if f.seek(0, os.SEEK_END) > 0 and os.pread(f.fileno(), 1, f.tell() - 1) != b"\n":
                        line = b"\n" + line
                    f.write(line)
                    f.flush()
                    os.fsync(f.fileno())
                finally:
                    fcntl.flock(f, fcntl.LOCK_UN)
        except OSError as exc:
            raise CacheWriteError(describe_write_error(exc, where)) from None
        return record

    # -- claims: which extractor works on which video right now ---------------------------------
    def claim(self, video_id: str) -> Claim | None:
        """Claim ``video_id`` for this process, or None while another process holds it. The claim is a lock
        on ``claims/<id>.claim``: the kernel drops it when its owner dies, so a stale claim is simply taken."""
        path = self.path / "claims" / f"{quote(video_id, safe='')}.claim"
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            except FileNotFoundError:
                path.parent.mkdir(exist_ok=True)
                continue
            except OSError as exc:
                raise CacheWriteError(describe_write_error(exc, path)) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return None
            try:
                current = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                current = False
            if not current:  # its owner finished and removed the file between our open and lock: again
                os.close(fd)
                continue
            owner = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": now_iso()}).encode()
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, owner, 0)
            except OSError:  # a full disk: the lock is the claim, the owner's name only helps messages
                pass
            return Claim(path, fd)

    def claim_owner(self, video_id: str) -> str:
        """``pid 123 on host`` of whoever holds the claim (for messages); "another process" if unknown."""
        try:
            owner = json.loads((self.path / "claims" / f"{quote(video_id, safe='')}.claim").read_text())
            return f"pid {owner['pid']} on {owner['host']}"
        except (OSError, ValueError, KeyError, TypeError):
            return "another process"

    def tidy_claims(self) -> None:
        """Remove stale claims (no live owner holds their lock: e.g. a run killed after recording a video but
        before releasing its claim), then the claims folder once it is empty (best effort: another run may be
        adding one)."""
        folder = self.path / "claims"
        for path in folder.glob("*.claim") if folder.is_dir() else ():
            try:
                stale = self.claim(unquote(path.stem))  # None while a live extractor holds it
            except CacheWriteError:  # best effort: a disk that cannot be written keeps its claims
                continue
            if stale is not None:
                stale.release()
        try:
            folder.rmdir()
        except OSError:
            pass


@dataclass
class Claim:
    path: Path
    fd: int

    def release(self) -> None:
        """Remove the claim file while still holding its lock, then unlock (close)."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        os.close(self.fd)


def _create_temp(directory: Path, suffix: str) -> tuple[int, str]:
    """Like ``tempfile.mkstemp`` but with the usual ``0o666 & ~umask`` permissions: mkstemp makes
    the file 0600 and the rename keeps that, so other users of a shared cache could not read it."""
    while True:
        path = os.path.join(directory, f"tmp{secrets.token_hex(6)}{suffix}")
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), path
        except FileExistsError:
            continue


def _write_atomic(path: Path, data: bytes, exclusive: bool = False, fsync: bool = False) -> None:
    fd, tmp = _create_temp(path.parent, ".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
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
