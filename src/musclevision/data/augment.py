"""Training-time augmentation of raw landmark batches (numpy, vectorized over the batch).

It acts on the landmarks as MediaPipe returns them, before the model's own feature step, so
every feature set (raw, normalized, world) sees the same physical perturbation:
left/right mirror (with the landmark-pair swap; a mirrored squat is still a squat), small
in-plane rotation / scale / aspect / translation (camera placement), jitter, whole frames
lost (no person found) and single landmarks lost (occlusion). Time stretch is applied when
windows are cut (see windows.py) because it changes which frames are read.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from musclevision.pose import transforms
from musclevision.pose.geometry import hip_centre
from musclevision.pose.skeleton import BODY_PARTS, NUM_LANDMARKS, SEGMENTS

ARMS = BODY_PARTS["both arms"]  # elbows, wrists and hands: the bones below the shoulders
PART_MASKS = np.array([np.isin(np.arange(NUM_LANDMARKS), ids) for ids in BODY_PARTS.values()])


@dataclass
class AugmentConfig:
    mirror: float = 0.0  # probability of a left/right flip
    rotate_deg: float = 0.0  # max |in-plane rotation|
    yaw_deg: float = 0.0  # max |rotation about the body's vertical axis| (camera further round; 180 = any side)
    pitch_deg: float | tuple[float, float] = 0.0  # camera elevation change: max |change|, or [low, high] (+: higher)
    proportions: float = 0.0  # max relative change of each body segment's length (another body)
    scale: float = 0.0  # max relative size change
    aspect: float = 0.0  # max relative x-vs-y stretch (cameras differ in aspect ratio)
    translate: float = 0.0  # max shift, in normalized image units
    noise: float = 0.0  # std of jitter on image x, y, z
    frame_dropout: float = 0.0  # probability a frame is lost (NaN row)
    landmark_dropout: float = 0.0  # probability a landmark is lost (visibility 0, at the hip centre)
    part_dropout: float = 0.0  # probability a whole body part (an arm, a leg, the face) is lost for a window
    time_stretch: tuple[float, float] = (1.0, 1.0)  # playback speed range, applied by the window sampler
    swap_arms: float = 0.0  # probability a window of swap_arms_within gets another such window's arms, held still
    swap_arms_within: tuple[str, ...] = ()  # classes whose arms are style, not exercise (squats, lunges)

    def __post_init__(self):
        # From a config, lists: tuples here. One class name alone is a list of one; null is none.
        self.time_stretch = tuple(self.time_stretch)
        within = self.swap_arms_within or ()
        self.swap_arms_within = (within,) if isinstance(within, str) else tuple(within)
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type in ("float", float) and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ValueError(f"data.augment.{f.name}={value!r} must be a number")
        for name in ("mirror", "frame_dropout", "landmark_dropout", "part_dropout", "swap_arms"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"data.augment.{name}={getattr(self, name)!r} must be a probability in [0, 1]")
        self.pitch_deg = self._pitch(self.pitch_deg)
        for name in ("rotate_deg", "yaw_deg", "proportions", "scale", "aspect", "translate", "noise"):
            if getattr(self, name) < 0:
                raise ValueError(f"data.augment.{name}={getattr(self, name)!r} must be >= 0")
        low, high = self.time_stretch
        if not 0 < low <= high:
            raise ValueError(f"data.augment.time_stretch={list(self.time_stretch)} must be [low, high] with 0 < low <= high")
        if self.swap_arms and len(self.swap_arms_within) < 1:
            raise ValueError("data.augment.swap_arms needs data.augment.swap_arms_within: the classes whose arms are style")

    @staticmethod
    def _pitch(value) -> float | tuple[float, float]:
        """``pitch_deg`` as given (a number, or [low, high] from a list or Hydra's ListConfig), checked."""
        if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 90:
            return value
        if not isinstance(value, (str, bool)) and hasattr(value, "__len__") and len(value) == 2:
            numbers = [float(v) for v in value if isinstance(v, (int, float)) and not isinstance(v, bool)]
            if len(numbers) == 2 and -90 <= numbers[0] <= numbers[1] <= 90:
                return numbers[0], numbers[1]
        given = list(value) if hasattr(value, "__len__") and not isinstance(value, str) else repr(value)
        raise ValueError(
            f"data.augment.pitch_deg={given} must be a number from 0 to 90 (up to that much higher or lower) "
            "or [low, high] with -90 <= low <= high <= 90 (degrees; + is higher)"
        )

    @property
    def pitch_range(self) -> tuple[float, float]:
        """Camera elevation changes drawn from, degrees (+: higher, looking down on the person)."""
        return self.pitch_deg if isinstance(self.pitch_deg, tuple) else (-self.pitch_deg, self.pitch_deg)

    @property
    def enabled(self) -> bool:
        skip = ("time_stretch", "swap_arms_within", "pitch_deg")
        return (
            self.time_stretch != (1.0, 1.0)
            or self.pitch_range != (0.0, 0.0)
            or any(getattr(self, f.name) for f in fields(self) if f.name not in skip)
        )


def augment(image: np.ndarray, world: np.ndarray, aspect: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator,
            labels: np.ndarray | None = None):  # fmt: skip
    """Perturb a batch in place-free fashion. image [B,T,33,4], world [B,T,33,3], aspect [B] = width/height,
    labels [B] class names (needed by swap_arms only)."""
    image, world = image.copy(), world.copy()
    batch = len(image)

    if cfg.swap_arms and labels is not None:
        # Arms held behind the head, forward, crossed or on the hips are a person's style in a squat or a lunge, not
        # the exercise: such windows get the arms of another one (any of those classes) as held in one of its frames,
        # turned to this body's facing. Held, not moving: arms that bend in rhythm stay the mark of a push-up.
        among = np.flatnonzero(np.isin(labels, cfg.swap_arms_within))
        chosen = rng.random(len(among)) < cfg.swap_arms
        if chosen.any() and len(among) > 1:
            take = among[chosen]
            # Another such window, never the window itself: a random step of 1..n-1 places round the list.
            donor = among[(np.flatnonzero(chosen) + rng.integers(1, len(among), chosen.sum())) % len(among)]
            seen = ~np.isnan(world[donor]).any((-1, -2))  # [N, T] frames with a person
            frame = np.argmax(rng.random(seen.shape) * seen, axis=1)  # a random one of them (any, when none)
            held = lambda a: np.repeat(a[donor, frame][:, None], a.shape[1], axis=1)  # noqa: E731  [N, T, 33, C]
            image[take], world[take] = transforms.transplant(
                image[take], world[take], aspect[take], held(image), held(world), aspect[donor], ARMS
            )

    flip = rng.random(batch) < cfg.mirror
    if flip.any():
        image[flip], world[flip] = transforms.mirror(image[flip], world[flip])
    if cfg.proportions:
        factors = {name: rng.uniform(1 - cfg.proportions, 1 + cfg.proportions, batch) for name in SEGMENTS}
        image, world = transforms.scale_segments(image, world, aspect, factors)
    if cfg.yaw_deg:
        image, world = transforms.rotate_yaw(image, world, aspect, np.deg2rad(rng.uniform(-cfg.yaw_deg, cfg.yaw_deg, batch)))
    if cfg.pitch_range != (0.0, 0.0):
        image, world = transforms.rotate_pitch(image, world, aspect, np.deg2rad(rng.uniform(*cfg.pitch_range, batch)))
    angle = np.deg2rad(rng.uniform(-cfg.rotate_deg, cfg.rotate_deg, batch))
    scale = 1.0 + rng.uniform(-cfg.scale, cfg.scale, batch)
    stretch = 1.0 + rng.uniform(-cfg.aspect, cfg.aspect, batch)
    shift = rng.uniform(-cfg.translate, cfg.translate, (batch, 2))
    cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    # Rotate in pixel-proportional units (x times aspect) so a rotation stays a rotation, not a shear.
    a = aspect[:, None, None]
    x, y = (image[..., 0] - 0.5) * a, image[..., 1] - 0.5
    s = scale[:, None, None]
    image[..., 0] = (cos * x - sin * y) * s * stretch[:, None, None] / a + 0.5 + shift[:, 0, None, None]
    image[..., 1] = (sin * x + cos * y) * s + 0.5 + shift[:, 1, None, None]
    image[..., 2] *= s
    wx, wy = world[..., 0].copy(), world[..., 1]
    world[..., 0] = (cos * wx - sin * wy) * s  # metric: no camera aspect to imitate
    world[..., 1] = (sin * wx + cos * wy) * s
    world[..., 2] *= s

    if cfg.noise:
        image[..., :3] += rng.normal(0.0, cfg.noise, image[..., :3].shape)
        world += rng.normal(0.0, 2 * cfg.noise, world.shape)  # world torso ~0.5 m vs ~0.25 image units
    if cfg.landmark_dropout or cfg.part_dropout:
        lost = rng.random(image.shape[:3]) < cfg.landmark_dropout
        # A whole part hidden for the whole window (a person half out of frame, a bench, a wall):
        # the model must not lean on one part alone, e.g. the arms of an unusual squat style.
        part = rng.integers(len(BODY_PARTS), size=batch)
        hidden = (rng.random(batch) < cfg.part_dropout)[:, None] & PART_MASKS[part]  # [B, 33]
        lost |= hidden[:, None, :]
        hips = hip_centre(image[..., :3])
        image[..., :3] = np.where(lost[..., None], hips[:, :, None, :], image[..., :3])
        image[..., 3] = np.where(lost, 0.0, image[..., 3])
        world = np.where(lost[..., None], 0.0, world)
    if cfg.frame_dropout:
        gone = rng.random(image.shape[:2]) < cfg.frame_dropout
        image[gone] = np.nan
        world[gone] = np.nan
    return image.astype(np.float32), world.astype(np.float32)
