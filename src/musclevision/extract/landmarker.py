"""Run MediaPipe's PoseLandmarker over one video: frames in, a keypoint sequence out.

One landmarker per video (and per view: orientation and zoom-out): VIDEO mode needs increasing timestamps and
carries tracking state from frame to frame, so reusing one across videos would leak the
previous clip's pose into the next clip's first frames and make results depend on processing order.

:class:`PoseTracker` is what runs per frame, here and (as ``web/static/js/pose.js``) in the page:

- **Rotated retries** (``rotations``): when the landmarker of the current orientation finds no
  one, the frame is tried turned by each other orientation (upright first, then ``rotations`` in
  order); the first that finds someone becomes the current one, so tracking goes on in the
  orientation that worked and frames that are found cost one landmarker call, as before. While
  no one is found anywhere, the retries run on the first such frame and then every
  ``retry_every``-th (a clip with long stretches of no one pays a fraction of the retries).
  Landmarks are mapped back to the original frame (``rotation.py``).
- **Zoom-out retries** (``zoom_out`` > 1): when no orientation finds anyone, each is tried again
  with the frame shrunk into the middle of a black canvas ``zoom_out`` times as large (a lifter
  filmed so close that the body overflows the frame); the view that works (orientation and zoom)
  becomes the current one, as for rotations.
- **Several people** (``num_poses`` > 1): MediaPipe returns up to that many; the exerciser among
  them is kept by a causal rule (``exerciser.py``). Following several people costs a landmark
  pass per person and a detector pass on every frame where fewer than ``num_poses`` are tracked,
  so with ``people_check_s`` > 0 one person is tracked, as with ``num_poses=1``, until a check
  (a fresh detection of up to ``num_poses`` people in one frame: on the first frame, then every
  ``people_check_s`` seconds) finds several distinct people; from that frame on, the clip follows
  several people. A clip with one person in view pays only the checks.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from musclevision.card import PoseModel
from musclevision.extract.exerciser import SELECTOR, ExerciserSelector, distinct_people
from musclevision.extract.pose_bundle import VARIANTS, ensure_bundle
from musclevision.extract.rotation import pad_frame, rotate_frame, unpad_image, unrotate_image, unrotate_world
from musclevision.extract.video import VideoError, iter_frames, open_video
from musclevision.paths import sha256_file
from musclevision.pose.skeleton import NUM_LANDMARKS, has_person

# Settings a cache key leaves out when they are off, so that caches made before they existed stay valid. Off is
# what a card's pose_model block means without them (the card and its cache key are the same record).
_ABSENT = PoseModel.absent()
OFF_WHEN_ABSENT = {"rotations": _ABSENT["rotations"], "zoom_out": float(_ABSENT["zoom_out"])}  # float, as the key holds it


class ConfigError(ValueError):
    """A bad option value; raised before any work starts, naming the option."""


@dataclass(frozen=True)
class PoseSettings:
    """Everything that changes the keypoints: the cache is keyed by these."""

    # Defaults measured on the shared clips (benchmarks/bench_pose_remedies.py; README section 1):
    # lower detection/presence thresholds and rotated retries find the bench-press lifter; several
    # people, followed once a check sees them, keep the exerciser beside an instructor (WallPushups
    # g11) and raise the held-out group accuracy, at the cost of some lifter frames beside a spotter; zoom-out retries find
    # lifters filmed so close that they overflow the frame (BenchPress frames with a person 89 -> 95 %) and raise it again.
    model: str = "full"
    min_pose_detection_confidence: float = 0.2
    min_pose_presence_confidence: float = 0.2
    min_tracking_confidence: float = 0.5
    rotations: tuple[int, ...] = (90, 270)  # degrees clockwise to retry a frame at when no one is found (90, 180, 270)
    retry_every: int = 1  # while no one is found, retry turned frames on the first such frame, then every n-th
    zoom_out: float = 2.0  # > 1: then retry each orientation on the frame shrunk into a canvas this many times as large
    num_poses: int = 2  # people MediaPipe may return per frame; > 1: keep the exerciser (exerciser.py)
    # num_poses > 1: follow one person until a check, every this many seconds, sees several (0: several from the start)
    people_check_s: float = 1.0
    bundle_sha256: str = ""  # of the .task bundle, filled in by resolve(); part of the cache key

    def __post_init__(self):
        if self.model not in VARIANTS:
            raise ConfigError(f"model={self.model!r} is not a pose model variant; use one of {', '.join(VARIANTS)}")
        for name in ("min_pose_detection_confidence", "min_pose_presence_confidence", "min_tracking_confidence"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name}={value!r} must be a number between 0 and 1")
        rotations = self.rotations
        if rotations is None or isinstance(rotations, (int, str)):
            rotations = () if rotations in (None, "") else (rotations,)
        rotations = tuple(rotations)
        quarter = all(isinstance(r, int) and not isinstance(r, bool) and r in (90, 180, 270) for r in rotations)
        if not quarter or len(set(rotations)) < len(rotations):
            raise ConfigError(f"rotations={list(rotations)!r} must list distinct quarter turns from 90, 180, 270 (or [])")
        object.__setattr__(self, "rotations", rotations)
        if isinstance(self.num_poses, bool) or not isinstance(self.num_poses, int) or not 1 <= self.num_poses <= 5:
            raise ConfigError(f"num_poses={self.num_poses!r} must be a whole number from 1 to 5")
        check = self.people_check_s
        if isinstance(check, bool) or not isinstance(check, (int, float)) or not 0 <= check <= 3600:
            raise ConfigError(f"people_check_s={check!r} must be a number of seconds from 0 to 3600 (0: several from the start)")
        object.__setattr__(self, "people_check_s", float(check))
        if isinstance(self.retry_every, bool) or not isinstance(self.retry_every, int) or self.retry_every < 1:
            raise ConfigError(f"retry_every={self.retry_every!r} must be a whole number >= 1 (1 = every frame)")
        zoom = self.zoom_out
        if isinstance(zoom, bool) or not isinstance(zoom, (int, float)) or not 1 <= zoom <= 4:
            raise ConfigError(f"zoom_out={zoom!r} must be a number from 1 (off) to 4")
        object.__setattr__(self, "zoom_out", float(zoom))

    @staticmethod
    def named(exc: ConfigError, prefix: str) -> ConfigError:
        """``exc`` with the option as the user writes it (``zoom_out=9 ...`` -> ``pose.zoom_out=9 ...``) where it is about
        a pose setting; other errors as they are."""
        key = str(exc).split("=", 1)[0]
        return ConfigError(prefix + str(exc)) if key in PoseSettings.__dataclass_fields__ else exc

    @classmethod
    def resolve(cls, **options) -> PoseSettings:
        """Settings with the bundle hash filled in (building the bundle if needed)."""
        settings = cls(**options)
        return cls(**{**asdict(settings), "bundle_sha256": sha256_file(ensure_bundle(settings.model))})

    def cache_key(self) -> dict:
        """What the keypoints depend on (JSON-ready). Without rotations it is the key of the extractor
        before rotations existed, so caches made then stay valid for the same settings."""
        import mediapipe

        key = {"mediapipe": mediapipe.__version__, **asdict(self), "rotations": list(self.rotations)}
        if not self.rotations and self.zoom_out == 1:
            del key["retry_every"]
        for name, off in OFF_WHEN_ABSENT.items():  # off: the key from before the setting existed
            if key[name] == off:
                del key[name]
        if self.num_poses > 1:
            key["selector"] = dict(SELECTOR)
        if self.num_poses == 1 or self.people_check_s == 0:  # no checks: the key from before they existed
            del key["people_check_s"]
        return key


@dataclass
class VideoKeypoints:
    image: np.ndarray  # [T, 33, 4] x, y (normalized), z, visibility; NaN rows = no person
    world: np.ndarray  # [T, 33, 3] metres, hip-centred; NaN rows = no person
    timestamps_ms: np.ndarray  # [T] int64, what MediaPipe was given
    fps: float
    width: int
    height: int
    declared_frames: int
    error: str | None = None  # set when decoding stopped early (the frames before are kept)
    tracking: dict = field(default_factory=dict)  # PoseTracker.summary(): orientations used, people seen/kept

    @property
    def frames(self) -> int:
        return len(self.image)

    @property
    def detected(self) -> int:
        return int(has_person(self.image).sum())


def create_landmarker(settings: PoseSettings, num_poses: int | None = None, video: bool = True):
    """A landmarker with ``settings`` (``num_poses`` overrides theirs); ``video=False``: IMAGE mode, a fresh
    detection on every call (the several-people check)."""
    from mediapipe.tasks.python import BaseOptions, vision

    options = vision.PoseLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(ensure_bundle(settings.model))),
        running_mode=vision.RunningMode.VIDEO if video else vision.RunningMode.IMAGE,
        num_poses=settings.num_poses if num_poses is None else num_poses,
        min_pose_detection_confidence=settings.min_pose_detection_confidence,
        min_pose_presence_confidence=settings.min_pose_presence_confidence,
        min_tracking_confidence=settings.min_tracking_confidence,
    )
    return vision.PoseLandmarker.create_from_options(options)


def timestamps_ms(n: int, fps: float) -> np.ndarray:
    """Millisecond timestamps from the real frame rate, kept strictly increasing (MediaPipe requires it)."""
    index = np.arange(n, dtype=np.int64)
    ts = np.round(index * 1000.0 / fps).astype(np.int64)
    return np.maximum.accumulate(ts - index) + index  # no-op below 1000 fps


def detect_people(landmarker, frame: np.ndarray, timestamp_ms: int | None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Everyone the landmarker finds in one RGB frame: ``[(image [33, 4], world [33, 3]), ...]`` (float32).
    ``timestamp_ms`` None: an IMAGE-mode landmarker."""
    import mediapipe as mp

    image = mp.Image(image_format=mp.ImageFormat.SRGB, data=frame)
    if timestamp_ms is None:
        result = landmarker.detect(image)
    else:
        result = landmarker.detect_for_video(image, int(timestamp_ms))
    people = []
    for image, world in zip(result.pose_landmarks, result.pose_world_landmarks):
        people.append((np.array([(p.x, p.y, p.z, p.visibility) for p in image], np.float32),
                       np.array([(p.x, p.y, p.z) for p in world], np.float32)))  # fmt: skip
    return people


def detect(landmarker, frame: np.ndarray, timestamp_ms: int):
    """Landmarks of one RGB frame as ``(image [33, 4], world [33, 3])``, or None when no person (the first
    one found; no rotation, no selection: the bare landmarker)."""
    people = detect_people(landmarker, frame, timestamp_ms)
    return people[0] if people else None


class PoseTracker:
    """Keypoints of one video, frame by frame: rotated retries and the exerciser among several people.

    ``detect(frame, timestamp_ms)`` -> ``(image [33, 4], world [33, 3])`` in the original frame, or None.
    Landmarkers of other orientations are created when first needed (a video that never needs them
    pays nothing); a landmarker that is not the current one always found no one on its last call,
    so it starts from a fresh detection when tried again, as a new one would.
    """

    def __init__(self, settings: PoseSettings, width: int, height: int):
        self.settings, self.width, self.height = settings, width, height
        orientations = (0, *(r for r in settings.rotations if r != 0))
        zooms = (1.0, settings.zoom_out) if settings.zoom_out > 1 else (1.0,)
        self.views = tuple((degrees, zoom) for zoom in zooms for degrees in orientations)  # tried in this order
        self.current = self.views[0]  # (degrees clockwise, zoom-out) that found someone last
        self.landmarkers: dict = {}  # (view, people followed) -> VIDEO-mode landmarker
        self.selector = ExerciserSelector(width, height) if settings.num_poses > 1 else None
        checks = settings.num_poses > 1 and settings.people_check_s > 0
        self.check_every_ms = settings.people_check_s * 1000.0 if checks else None
        self.several = settings.num_poses > 1 and not checks  # following several people now
        self.several_from_ms = 0 if self.several else None  # the timestamp from which several people were followed
        self.next_check_ms = 0.0
        self.checker = None  # IMAGE-mode landmarker of the several-people check
        self.checks = 0
        self.checked_max = 0  # most distinct people a check found
        self.found_in = Counter()  # frames with a person, per view
        self.calls = 0  # landmarker calls (frames + retries)
        self.empty = 0  # frames in a row, up to the last one, where no orientation found anyone
        self.people: list = []  # everyone found in the last frame, mapped back (recording, debugging)

    def _landmarker(self, view: tuple[int, float]):
        key = (view, self.several)
        if key not in self.landmarkers:
            self.landmarkers[key] = create_landmarker(self.settings, self.settings.num_poses if self.several else 1)
        return self.landmarkers[key]

    def _check(self, frame: np.ndarray, timestamp_ms: int) -> None:
        """Several distinct people in this frame (a fresh detection in the current orientation)? Then follow them
        from this frame on; else check again ``people_check_s`` later."""
        if self.checker is None:
            self.checker = create_landmarker(self.settings, video=False)
        self.checks += 1
        found = [i for i, _ in self._back(detect_people(self.checker, self._view(frame, self.current), None), self.current)]
        count = distinct_people(found, self.width, self.height, self.selector.p["gate"])
        self.checked_max = max(self.checked_max, count)
        if count > 1:
            self.several, self.several_from_ms = True, int(timestamp_ms)
            for key in [k for k in self.landmarkers if not k[1]]:  # the one-person landmarkers are done with
                self.landmarkers.pop(key).close()
            self.checker.close()
            self.checker = None
        else:
            self.next_check_ms = timestamp_ms + self.check_every_ms

    def detect(self, frame: np.ndarray, timestamp_ms: int):
        if self.check_every_ms is not None and not self.several and timestamp_ms >= self.next_check_ms:
            self._check(frame, timestamp_ms)
        people, found = [], None
        retry = self.empty % self.settings.retry_every == 0  # just lost (or never found): retry now, then every n-th
        others = tuple(v for v in self.views if v != self.current) if retry else ()
        for view in (self.current, *others):
            self.calls += 1
            people = detect_people(self._landmarker(view), self._view(frame, view), timestamp_ms)
            if people:
                found = self.current = view
                break
        self.empty = 0 if people else self.empty + 1
        if found is not None:
            people = self._back(people, found)
        self.people = people
        if self.several:
            choice = self.selector.update([image for image, _ in people], timestamp_ms)
        else:
            choice = 0 if people else None
        if choice is None:
            return None
        self.found_in[found] += 1
        return people[choice]

    @staticmethod
    def _view(frame: np.ndarray, view: tuple[int, float]) -> np.ndarray:
        """The frame as the landmarker of ``view`` sees it: turned, then zoomed out."""
        degrees, zoom = view
        return pad_frame(rotate_frame(frame, degrees), zoom)

    def _back(self, people: list, view: tuple[int, float]) -> list:
        """People found in ``view``, in the original frame's coordinates."""
        degrees, zoom = view
        if view == (0, 1.0):
            return people
        w, h = (self.height, self.width) if degrees in (90, 270) else (self.width, self.height)  # the turned frame
        return [(unrotate_image(unpad_image(i, zoom, w, h), degrees, self.width, self.height), unrotate_world(p, degrees))
                for i, p in people]  # fmt: skip

    @staticmethod
    def view_name(view: tuple[int, float]) -> str:
        """``"90"`` for a turned frame, ``"90x2"`` for one also zoomed out by 2 (manifest keys)."""
        degrees, zoom = view
        return f"{degrees}" if zoom == 1 else f"{degrees}x{zoom:g}"

    def summary(self) -> dict:
        """For the manifest: frames with a person per view, and who was kept among several people."""
        views = sorted(self.found_in.items(), key=lambda kv: (kv[0][1], kv[0][0]))
        out = {"orientations": {self.view_name(k): v for k, v in views}, "calls": self.calls}
        if self.selector is not None:
            people = self.selector.summary()
            people["people_max"] = max(people["people_max"], self.checked_max)
            if self.check_every_ms is not None:
                people.update(checks=self.checks, several_from_ms=self.several_from_ms)
            out["people"] = people
        return out

    def close(self) -> None:
        for landmarker in [*self.landmarkers.values(), *([self.checker] if self.checker else [])]:
            landmarker.close()
        self.landmarkers.clear()
        self.checker = None

    def __enter__(self) -> PoseTracker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def extract_video(path: Path, settings: PoseSettings) -> VideoKeypoints:
    """Keypoints for every decodable frame of ``path``; raises VideoError for unusable files.

    A file that stops decoding part-way keeps the frames before the damage and says so in
    ``error``; so does one whose container declares more frames than exist (truncated copy).
    """
    reader, info = open_video(path)
    stamps = timestamps_ms(info.frames, info.fps)
    image = np.full((info.frames, NUM_LANDMARKS, 4), np.nan, np.float32)
    world = np.full((info.frames, NUM_LANDMARKS, 3), np.nan, np.float32)
    error, done = None, 0
    with PoseTracker(settings, info.width, info.height) as tracker:
        try:
            for frame in iter_frames(reader, info):
                found = tracker.detect(frame, stamps[done])
                if found is not None:
                    image[done], world[done] = found
                done += 1
        except VideoError as exc:
            error = str(exc)
    if done == 0:
        raise VideoError(f"{path}: no frame could be decoded ({error})")
    if error is None and info.truncated:
        error = (
            f"truncated: the container declares {info.declared_frames} frames but only {info.frames} decode; "
            "the frames that exist were kept, re-copy the file for the rest"
        )
    return VideoKeypoints(
        image[:done],
        world[:done],
        stamps[:done],
        info.fps,
        info.width,
        info.height,
        info.declared_frames,
        error,
        tracker.summary(),
    )
