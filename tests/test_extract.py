"""Extraction stage on real clips and real MediaPipe: what the cache holds, an outside check
against the paper authors' keypoints, resume, option checking and settings-keyed caches.

The clips come from the session fixture ``real_cache`` (14 real clips, 2 workers, extracted
once). Tests that need their own extraction use the shortest real clips to stay cheap.
Helpers shared with ``test_extract_*.py`` (``run_extract``, ``SHORT_CLIPS`` ...) are in helpers.py.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import shutil
import stat
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import (
    EXTRA_CLIPS,
    REFERENCE_CLIPS,
    SHARED_DATA,
    SHORT_CLIPS,
    assert_clip_consistent,
    flat,
    link_clips,
    run_extract,
)
from musclevision.data import KeypointCache
from musclevision.extract import CacheError, ConfigError, extract_videos
from musclevision.extract.landmarker import PoseSettings
from musclevision.pose.skeleton import LANDMARK_NAMES

DEFAULT_DETECTION = PoseSettings.min_pose_detection_confidence  # the configs say the same (test_contract)

pytestmark = pytest.mark.integration  # real videos and MediaPipe

ALL_REAL = REFERENCE_CLIPS + EXTRA_CLIPS


def test_real_clips_cache_shapes_records_and_reader(real_cache, ucf_videos):
    cache = KeypointCache(real_cache)
    assert cache.settings["model"] == "full" and cache.settings["num_poses"] == PoseSettings.num_poses == 2
    assert cache.settings["min_pose_detection_confidence"] == DEFAULT_DETECTION and len(cache.settings["bundle_sha256"]) == 64
    assert sorted(r.video_id for r in cache.videos()) == sorted(ALL_REAL)
    assert cache.failures() == [] and set(cache.records()) == set(ALL_REAL)
    assert [r.video_id for r in cache.videos(labels=["PushUps"])] == sorted(v for v in ALL_REAL if v.startswith("PushUps/"))

    import cv2

    for video_id in ALL_REAL:
        clip = assert_clip_consistent(cache, video_id)
        record = clip.record
        label, name = video_id.split("/")
        source = ucf_videos / f"{video_id}.avi"
        assert record.status == "ok" and record.error is None, (video_id, record.status, record.error)
        assert record.label == label and record.group == "g" + re.search(r"_g(\d\d)_", name).group(1)
        assert Path(record.source) == source.resolve()
        assert record.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
        assert record.size == source.stat().st_size
        assert (record.width, record.height, record.fps) == (320, 240, 25.0)
        # T = frames decoded = frames the container declares = frames OpenCV decodes by itself.
        cap = cv2.VideoCapture(str(source))
        decoded_by_opencv = 0
        while cap.grab():
            decoded_by_opencv += 1
        cap.release()
        assert record.frames_decoded == record.frames_declared == decoded_by_opencv == len(clip.image), video_id
        assert np.array_equal(clip.timestamps_ms, np.arange(len(clip.image)) * 40)  # 25 fps
        found = ~np.isnan(clip.image[:, 0, 0])  # frames without a person are NaN rows, never dropped
        assert record.frames_detected == int(found.sum()), video_id
        xy, vis = clip.image[found][..., :2], clip.image[found][..., 3]
        assert np.nanmedian(xy) > 0.1 and np.nanmedian(xy) < 0.9 and np.all((vis >= 0) & (vis <= 1)), video_id
        # World landmarks are metres around the hip centre (left_hip 23, right_hip 24).
        hips = clip.world[found][:, [23, 24]].mean(1)
        assert np.abs(hips).max() < 0.1 and np.abs(clip.world[found]).max() < 3, video_id

    # Files in the cache are readable like any other file the user makes (umask), not 0600.
    expected_mode = 0o666 & ~_umask()
    for path in [real_cache / "cache.json", real_cache / "manifest.jsonl", *(real_cache / "clips").rglob("*.npz")]:
        assert stat.S_IMODE(path.stat().st_mode) == expected_mode, f"{path} has mode {oct(path.stat().st_mode)}"
    assert not list(real_cache.rglob("*.tmp")), "temp files left behind"
    with pytest.raises(KeyError, match="not in the cache"):
        cache.load("PushUps/v_PushUps_g99_c99")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_reference(path: Path) -> np.ndarray:
    """The authors' CSV as [T, 33, 4] (x, y, z, visibility), NaN rows where they found nobody."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    names = [c[: -len(".x")] for c in header[1::4]]
    assert header[0] == "frame" and names == [n.upper() for n in LANDMARK_NAMES], "landmark order differs"
    out = np.full((len(body), 33, 4), np.nan)
    for i, row in enumerate(body):
        assert int(row[0]) == i
        values = [v for v in row[1:] if v != ""]
        if values:
            out[i] = np.asarray(values, dtype=float).reshape(33, 4)
    return out


def test_keypoints_agree_with_the_paper_authors_reference(real_cache):
    """Outside check: RGB order, landmark order and normalization are wired like the authors'."""
    cache = KeypointCache(real_cache)
    pooled, lines = [], []
    for video_id in REFERENCE_CLIPS:
        reference = read_reference(SHARED_DATA / "reference-keypoints" / f"{video_id}.csv")
        ours = cache.load(video_id).image
        assert len(ours) == len(reference), f"{video_id}: {len(ours)} frames, reference has {len(reference)}"
        ours_found, ref_found = ~np.isnan(ours[:, 0, 0]), ~np.isnan(reference[:, 0, 0])
        both = ours_found & ref_found
        assert both.sum() >= 0.5 * len(ours), f"{video_id}: only {both.sum()} frames detected by both"
        diff = np.abs(ours[both][..., :2] - reference[both][..., :2])
        pooled.append(diff.ravel())
        rate_ours, rate_ref = ours_found.mean(), ref_found.mean()
        lines.append(
            f"{video_id}: MAD x,y {diff.mean():.4f} over {both.sum()} frames; "
            f"detection {rate_ours:.1%} vs reference {rate_ref:.1%}"
        )
        assert abs(rate_ours - rate_ref) <= 0.05, lines[-1]
    mad = float(np.concatenate(pooled).mean())
    print("\n".join(lines) + f"\npooled MAD x,y over the six clips: {mad:.4f}")
    assert mad < 0.015, f"pooled MAD {mad:.4f} >= 0.015:\n" + "\n".join(lines)


def test_second_run_does_nothing_and_is_fast(real_cache):
    manifest = real_cache / "manifest.jsonl"
    before = (manifest.stat().st_mtime_ns, manifest.read_bytes())
    start = time.perf_counter()
    summary = extract_videos(real_cache.parent / "videos", real_cache, workers=2)
    elapsed = time.perf_counter() - start
    assert summary.done == [] and summary.skipped == summary.selected == len(ALL_REAL)
    assert summary.failures == [] and summary.frames == 0
    assert elapsed < 5, f"a run with nothing to do took {elapsed:.1f} s (no worker should even start)"
    assert (manifest.stat().st_mtime_ns, manifest.read_bytes()) == before


def test_a_copied_or_touched_video_is_not_new_but_a_changed_one_is(tmp_path):
    from musclevision.extract import PoseSettings
    from musclevision.extract.discover import find_videos
    from musclevision.extract.pool import make_record

    video = tmp_path / "videos" / "Squat" / "v_Squat_g01_c01.avi"
    video.parent.mkdir(parents=True)
    video.write_bytes(b"a" * 1000)
    (source,) = find_videos(tmp_path / "videos")
    cache = KeypointCache.open_for_writing(tmp_path / "cache", PoseSettings.resolve().cache_key())
    cache.write(make_record(source, "failed", "no person detected"))
    assert cache.is_finished(source.video_id, source.size, source.mtime_ns, path=video)
    os.utime(video, ns=(source.mtime_ns + 10**9, source.mtime_ns + 10**9))  # copied again, same bytes
    (touched,) = find_videos(tmp_path / "videos")
    assert cache.is_finished(touched.video_id, touched.size, touched.mtime_ns, path=video)
    video.write_bytes(b"b" * 1000)  # same size, other content
    (changed,) = find_videos(tmp_path / "videos")
    assert not cache.is_finished(changed.video_id, changed.size, changed.mtime_ns, path=video)


# -- options and settings -------------------------------------------------------------------
BAD_OPTIONS = [  # (override, the option as the message must name it)
    ("workers=0", "workers"),
    ("pose.model=huge", "pose.model"),
    ("shard=3/2", "shard"),
    ("pose.min_pose_detection_confidence=1.5", "pose.min_pose_detection_confidence"),
    ("pose.min_tracking_confidence=true", "pose.min_tracking_confidence"),
    ("pose.zoom_out=9", "pose.zoom_out"),
    ("classes=[Pushups]", "classes"),
    ("experiment=best", "experiment"),  # training's option: "not an option of musclevision-extract"
    ("worker=2", "worker"),  # misspelt: "did you mean workers?", never Hydra's "use +worker=2" (which it would ignore)
]


@pytest.mark.parametrize("override,option", BAD_OPTIONS, ids=[o for o, _ in BAD_OPTIONS])
def test_cli_refuses_a_bad_option_before_any_work(tmp_path, ucf_videos, override, option):
    videos = link_clips(ucf_videos, SHORT_CLIPS[:1], tmp_path / "videos")
    cache_dir = tmp_path / "cache"
    result = run_extract(tmp_path, f"video_root={videos}", f"cache_dir={cache_dir}", override, timeout=120)
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    message = flat(result.stderr)
    assert f"{option}=" in message or f"{option} " in message, message
    if option == "classes":  # a misspelt class: the folders that exist are named
        assert f"its class folders: {SHORT_CLIPS[0].split('/')[0]}" in message, message
    if option == "experiment":
        assert "experiment= is not an option of musclevision-extract" in message, message
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr  # not Hydra's block
    if option == "worker":
        assert "worker is not an option of musclevision-extract; did you mean workers?" in message, message
        assert len(result.stderr.strip().splitlines()) == 1 and "+worker" not in message, result.stderr
    assert "Traceback" not in result.stderr
    assert not cache_dir.exists(), "a refused run must not create the cache folder"


def test_api_refuses_bad_options_with_config_error(tmp_path, ucf_videos):
    videos = link_clips(ucf_videos, SHORT_CLIPS[:1], tmp_path / "videos")
    cases = [
        ({"workers": True}, "workers"), ({"workers": 1.5}, "workers"), ({"workers": "two"}, "workers"),
        ({"limit": 0}, "limit"), ({"limit": -3}, "limit"), ({"shard": "1/1"}, "shard"), ({"shard": "half"}, "shard"),
        ({"pose": {"model": "Full"}}, "model"), ({"pose": {"min_pose_presence_confidence": -0.1}}, "presence"),
        ({"pose": {"min_tracking_confidence": "0.5"}}, "min_tracking_confidence"),
        ({"classes": "PushUps"}, "classes"), ({"rebuild": True, "shard": "0/2"}, "rebuild"),
    ]  # fmt: skip
    for kwargs, option in cases:
        with pytest.raises(ConfigError, match=option):
            extract_videos(videos, tmp_path / "cache", **kwargs)
        assert not (tmp_path / "cache").exists(), kwargs


def test_a_video_root_one_folder_too_high_is_pointed_at_the_videos(tmp_path, ucf_videos):
    videos = link_clips(ucf_videos, SHORT_CLIPS[:1], tmp_path / "dataset" / "videos")
    result = run_extract(tmp_path, f"video_root={videos.parent}", f"cache_dir={tmp_path / 'cache'}", timeout=120)
    assert result.returncode == 2 and f"did you mean video_root={videos}?" in flat(result.stderr), result.stderr


def test_missing_video_root_exits_2_and_writes_nothing(tmp_path):
    cache_dir = tmp_path / "cache"
    result = run_extract(tmp_path, f"video_root={tmp_path / 'no-such-folder'}", f"cache_dir={cache_dir}", timeout=120)
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "video_root=" in flat(result.stderr) and "no-such-folder" in flat(result.stderr)
    assert not cache_dir.exists()


def test_cache_with_other_settings_is_refused_and_rebuild_rebuilds_it(real_cache, tmp_path):
    manifest_before = (real_cache / "manifest.jsonl").read_bytes()
    videos = real_cache.parent / "videos"
    result = run_extract(tmp_path, f"video_root={videos}", f"cache_dir={real_cache}", "pose.min_pose_detection_confidence=0.7")
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    message = flat(result.stderr)
    expected = f"min_pose_detection_confidence: cache has {DEFAULT_DETECTION}, asked 0.7"
    assert "other extractor settings" in message and expected in message, message
    assert "rebuild=true" in message, message
    assert (real_cache / "manifest.jsonl").read_bytes() == manifest_before, "a refused run changed the cache"
    with pytest.raises(CacheError, match="model: cache has 'full', asked 'lite'"):
        extract_videos(videos, real_cache, pose={"model": "lite"}, workers=1)

    # rebuild=true on a copy of the cache (the session one stays as it is): old clips go.
    copy = tmp_path / "cache"
    shutil.copytree(real_cache, copy)
    result = run_extract(tmp_path, f"video_root={videos}", f"cache_dir={copy}", "pose.min_pose_detection_confidence=0.7",
                     "rebuild=true", "limit=1", "workers=1", "classes=[PushUps]")  # fmt: skip
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    # stderr is not a terminal here (as in a SLURM log): plain progress lines, not a bar drawn only at the end
    assert "extract: 1 videos to landmark\n" in result.stderr and "extract: 1/1 videos," in result.stderr, result.stderr
    rebuilt = KeypointCache(copy)
    assert rebuilt.settings["min_pose_detection_confidence"] == 0.7
    first = min(v for v in ALL_REAL if v.startswith("PushUps/"))  # limit=1 takes the first in name order
    assert list(rebuilt.records()) == [first], list(rebuilt.records())
    assert len(list((copy / "clips").rglob("*.npz"))) == 1
    assert_clip_consistent(rebuilt, first)
    # Now the old settings are the mismatch.
    with pytest.raises(CacheError, match="rebuild=true"):
        extract_videos(videos, copy, workers=1)
