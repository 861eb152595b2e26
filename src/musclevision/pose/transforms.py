"""Views and bodies that were never filmed: the same movement seen from elsewhere, or done by someone else.

Each transform acts on a batch of keypoint sequences, image ``[..., T, 33, 4]`` and world ``[..., T, 33, 3]``
(numpy; NaN rows = no person stay NaN), and keeps the two consistent: the world skeleton (metres, camera
axes: x right, y down, z away) is moved in 3-D, and the image landmarks get the same motion in their own
3-D frame, re-projected under weak perspective. MediaPipe's image landmarks carry depth ``z`` on the scale
of ``x`` (both relative to the image width), so with ``a`` = width/height the image skeleton in
height-units is ``(x·a, y, z·a)``; rotating that about the hip midpoint and dividing x and z by ``a`` again
is what a camera elsewhere at the same distance would see. A model that reads only image landmarks is
thus tested on the same view change as one that reads world landmarks. Visibility is left as it was
(which points a real camera would lose cannot be known): features should not depend on it.

Used by training augmentation (``data/augment.py``) and by the stress suite (``models/stress.py``).
"""

from __future__ import annotations

import warnings

import numpy as np

from musclevision.pose.geometry import hip_centre, right_to_left, shoulder_centre
from musclevision.pose.skeleton import MIRROR, PARENT, SEGMENTS


def _per_item(value, ndim: int) -> np.ndarray:
    """A scalar or a per-item ``[B]`` array, shaped to broadcast over ``[B, T, 33]`` (ndim = 3)."""
    value = np.asarray(value, dtype=np.float64)
    return value.reshape(value.shape + (1,) * (ndim - value.ndim)) if value.ndim else value


def _height_units(aspect, ndim: int) -> np.ndarray:
    """Factors ``(a, 1, a)`` that turn image x, y, z (x and z in width units) into height units, shaped
    ``[B, 1.., 3]`` with ``ndim`` axes before the last (``[3]`` for one aspect)."""
    a = _per_item(aspect, ndim)
    return np.stack(np.broadcast_arrays(a, 1.0, a), axis=-1)


def mirror(image: np.ndarray, world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Left/right mirror image: x flipped and every landmark swapped with its twin (a mirrored squat is a squat)."""
    image, world = image[..., MIRROR, :].copy(), world[..., MIRROR, :].copy()
    image[..., 0] = 1.0 - image[..., 0]
    world[..., 0] = -world[..., 0]
    return image, world


def _rotate(image, world, aspect, angle, axes: tuple[int, int]):
    """Rotate world and the image's 3-D frame by ``angle`` in the plane of ``axes`` (0 = x, 1 = y, 2 = z),
    about the hip midpoint. Positive angles turn axis ``axes[0]`` towards ``axes[1]``."""
    i, j = axes
    image, world = image.copy(), world.copy()
    cos, sin = np.cos(_per_item(angle, 3)), np.sin(_per_item(angle, 3))
    a = _per_item(aspect, 3)
    units = [a, 1.0, a]  # image x and z are in width units, y in height units: rotate in height units
    hip = hip_centre(image[..., :3])[..., None, :]  # [..., T, 1, 3]
    u, v = (image[..., i] - hip[..., i]) * units[i], (image[..., j] - hip[..., j]) * units[j]
    image[..., i] = (cos * u - sin * v) / units[i] + hip[..., i]
    image[..., j] = (sin * u + cos * v) / units[j] + hip[..., j]
    u, v = world[..., i].copy(), world[..., j].copy()
    world[..., i] = cos * u - sin * v
    world[..., j] = sin * u + cos * v
    return image, world


def rotate_yaw(image, world, aspect, angle):
    """The body turned about the vertical axis by ``angle`` radians (a camera further round the person)."""
    return _rotate(image, world, aspect, angle, (2, 0))


def rotate_pitch(image, world, aspect, angle):
    """The scene seen by a camera ``angle`` radians higher (positive: looking down on the person) or lower."""
    return _rotate(image, world, aspect, angle, (1, 2))


def roll(image, world, aspect, angle):
    """The camera rolled by ``angle`` radians in the image plane (a tilted phone)."""
    return _rotate(image, world, aspect, angle, (0, 1))


def scale_segments(image: np.ndarray, world: np.ndarray, aspect, factors: dict) -> tuple[np.ndarray, np.ndarray]:
    """Another body: the bones of each named segment of ``SEGMENTS`` lengthened by its factor (a number, or one per
    batch item, e.g. ``{"thighs": 1.15}``), every landmark further out moving with them along the kinematic tree
    ``PARENT``; image and world alike."""
    values = [np.asarray(factors.get(name, 1.0), dtype=np.float64) for name in SEGMENTS]
    lead = np.broadcast_shapes(*(v.shape for v in values))  # () or (B,)
    factor = np.ones((*lead, len(PARENT)))
    for name, value in zip(SEGMENTS, values):
        factor[..., list(SEGMENTS[name])] = np.broadcast_to(value, lead)[..., None]
    factor = factor.reshape(*lead, *(1,) * (image.ndim - 2 - len(lead)), len(PARENT), 1)  # [B, T.., 33, 1]
    units = _height_units(aspect, image.ndim - 1)  # [B, 1, 1, 3]: x, z in width units -> height units
    out = []
    for points, unit in ((image[..., :3] * units, units), (world, 1.0)):
        new = points.copy()
        for index in _tree_order():
            parent = PARENT[index]
            if parent != index:
                bone = points[..., index, :] - points[..., parent, :]
                new[..., index, :] = new[..., parent, :] + factor[..., index, :] * bone
        out.append(new / unit)
    image = np.concatenate([out[0], image[..., 3:]], axis=-1)
    return image.astype(np.float32), out[1].astype(np.float32)


def transplant(
    image: np.ndarray, world: np.ndarray, aspect, donor_image: np.ndarray, donor_world: np.ndarray, donor_aspect, landmarks
) -> tuple[np.ndarray, np.ndarray]:
    """Another person's style of one body part: the bones ending at ``landmarks`` (e.g. both arms below the
    shoulders) taken frame by frame from the donor sequences (same shape as image/world), turned about the
    vertical axis from the donor's facing into the recipient's, and scaled from the donor's body to the
    recipient's; the rest of the recipient's body is kept. The image landmarks get the donor's image bones with
    the same turn and the image's scale ratio, and the donor's visibility. With oneself as donor nothing changes.
    Frames where either has no person keep the recipient's own landmarks."""
    ids = [i for i in _tree_order() if i in set(landmarks)]
    image, world = image.copy(), world.copy()
    units, donor_units = _height_units(aspect, 2), _height_units(donor_aspect, 2)  # [B, 1, 3] (or [3])

    def facing(w):  # [B, T, 33, 3] -> [B] angle of the body's right-to-left line in the floor plane (x, z)
        across = np.nansum(right_to_left(w), axis=-2)
        return np.arctan2(across[..., 2], across[..., 0])

    def torso(w):  # [B, T] shoulder-centre to hip-centre length
        return np.linalg.norm(shoulder_centre(w) - hip_centre(w), axis=-1)

    theirs = donor_image[..., :3] * donor_units[..., None, :]  # the donor's image landmarks in height units
    turn = _per_item(facing(world) - facing(donor_world), 2)  # [B, 1]: donor's facing -> recipient's
    cos, sin = np.cos(turn), np.sin(turn)
    with warnings.catch_warnings():  # an item without a frame where both have a person: NaN, never used
        warnings.simplefilter("ignore", RuntimeWarning)
        size = _per_item(np.nanmedian(torso(world) / torso(donor_world), axis=-1), 2)  # [B, 1]
        image_size = _per_item(np.nanmedian(torso(image[..., :3] * units[..., None, :]) / torso(theirs), axis=-1), 2)
    both = ~(np.isnan(world).any((-1, -2)) | np.isnan(donor_world).any((-1, -2)))[..., None]  # [B, T, 1]

    def turned(bone, scale):  # [B, T, 3]: the facing's turn in the floor plane (x, z), then the body's scale
        x, y, z = bone[..., 0], bone[..., 1], bone[..., 2]
        return np.stack([cos * x - sin * z, y, sin * x + cos * z], axis=-1) * scale[..., None]

    for index in ids:
        parent = PARENT[index]
        bone = turned(donor_world[..., index, :] - donor_world[..., parent, :], size)
        world[..., index, :] = np.where(both, world[..., parent, :] + bone, world[..., index, :])
        # Image landmarks in height units (x, z times the aspect), as _rotate does.
        bone = turned(theirs[..., index, :] - theirs[..., parent, :], image_size) / units
        image[..., index, :3] = np.where(both, image[..., parent, :3] + bone, image[..., index, :3])
        image[..., index, 3] = np.where(both[..., 0], donor_image[..., index, 3], image[..., index, 3])
    return image.astype(np.float32), world.astype(np.float32)


def _tree_order() -> list[int]:
    """Landmarks ordered so that each comes after its parent (root first)."""
    depth = []
    for index in range(len(PARENT)):
        d, j = 0, index
        while PARENT[j] != j:
            j, d = PARENT[j], d + 1
        depth.append(d)
    return sorted(range(len(PARENT)), key=depth.__getitem__)
