"""The keypoint cache under damage, in-process and without MediaPipe: damaged clip files are
named and redone, a torn manifest line never swallows the next record, a garbage cache.json is
named, and a video claimed by one process is not taken by another until that one is gone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from urllib.parse import quote

import numpy as np
import pytest

from musclevision.extract import CacheError, ClipRecord, KeypointCache, PoseSettings
from musclevision.extract.cache import DamagedClipError


def make_cache(path, ids=("PushUps/v_PushUps_g01_c01", "Lunges/v_Lunges_g02_c01"), frames=30) -> KeypointCache:
    cache = KeypointCache.open_for_writing(path, PoseSettings.resolve().cache_key())
    rng = np.random.default_rng(0)
    for video_id in ids:
        label = video_id.split("/")[0]
        record = ClipRecord(video_id=video_id, label=label, group="g01", source=f"/videos/{video_id}.avi", status="ok",
                            error=None, frames_declared=frames, frames_decoded=frames, frames_detected=frames,
                            detection_rate=1.0, fps=25.0, width=320, height=240, sha256="0" * 64, size=1000, mtime_ns=1,
                            seconds=1.0, finished="2026-01-01T00:00:00+00:00")  # fmt: skip
        image = rng.random((frames, 33, 4), dtype=np.float32)
        world = rng.random((frames, 33, 3), dtype=np.float32)
        cache.write(record, image, world, np.arange(frames, dtype=np.int64) * 40)
    return cache


def is_finished(cache: KeypointCache, video_id: str) -> bool:
    return cache.is_finished(video_id, 1000, 1)


def test_a_damaged_clip_file_is_named_on_load_and_redone_by_the_extractor(tmp_path):
    cache = make_cache(tmp_path / "cache")
    good, bad = "Lunges/v_Lunges_g02_c01", "PushUps/v_PushUps_g01_c01"
    assert all(len(r.clip_sha256) == 64 for r in cache.records().values()), "every entry records its file's checksum"
    path = cache.clip_path(bad)
    intact = path.read_bytes()

    damages = {
        "cut short": intact[: len(intact) // 3],
        "one byte changed": intact[:5000] + bytes([intact[5000] ^ 1]) + intact[5001:],  # same size, still a valid zip?
        "another clip's file": cache.clip_path(good).read_bytes(),
    }
    for what, data in damages.items():
        path.write_bytes(data)
        with pytest.raises(DamagedClipError) as error:
            KeypointCache(cache.path).load(bad)
        message = str(error.value)
        assert str(path) in message and "damaged" in message, (what, message)
        assert f"cache_dir={cache.path} videos=[{bad}]" in message, (what, message)  # how to redo exactly this entry
        assert isinstance(error.value, CacheError)  # train/eval print it as one line
        assert not is_finished(KeypointCache(cache.path), bad), f"{what}: a re-run of the extractor must redo it"
        assert is_finished(KeypointCache(cache.path), good)
    path.unlink()
    with pytest.raises(DamagedClipError, match="missing"):
        KeypointCache(cache.path).load(bad)
    path.write_bytes(intact)
    assert KeypointCache(cache.path).load(bad).image.shape == (30, 33, 4) and is_finished(cache, bad)


def test_entries_of_an_old_manifest_without_checksums_are_still_verified(tmp_path):
    cache = make_cache(tmp_path / "cache")
    manifest = cache.path / "manifest.jsonl"
    old = [{k: v for k, v in json.loads(line).items() if k != "clip_sha256"} for line in manifest.read_text().splitlines()]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in old))
    bad = "PushUps/v_PushUps_g01_c01"
    cache = KeypointCache(cache.path)
    assert cache.load(bad).image.shape == (30, 33, 4) and is_finished(cache, bad)  # intact: read as before
    data = cache.clip_path(bad).read_bytes()
    for damaged in (data[:-100], data[:3000] + bytes([data[3000] ^ 0xFF]) + data[3001:]):
        cache.clip_path(bad).write_bytes(damaged)
        with pytest.raises(DamagedClipError, match="unreadable"):  # zip's CRC-32 / structure, not a BadZipFile traceback
            KeypointCache(cache.path).load(bad)
        assert not is_finished(KeypointCache(cache.path), bad)


def test_a_torn_manifest_line_does_not_swallow_the_next_record(tmp_path):
    cache = make_cache(tmp_path / "cache", ids=("PushUps/v_PushUps_g01_c01",))
    manifest = cache.path / "manifest.jsonl"
    whole = manifest.read_text()
    manifest.write_text(whole + whole[: len(whole) // 2])  # a crash or a full disk in the middle of an append
    make_cache(tmp_path / "cache", ids=("Lunges/v_Lunges_g02_c01",))
    records = KeypointCache(cache.path).records()
    assert sorted(records) == ["Lunges/v_Lunges_g02_c01", "PushUps/v_PushUps_g01_c01"], records.keys()
    lines = manifest.read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[2])["video_id"] == "Lunges/v_Lunges_g02_c01", lines


@pytest.mark.parametrize("content", ["", "garbage{", "[1, 2]", '{"format_version": 1}', '{"format_version": 1, "extractor": 3}',
                                     b"\xff\xfe\x00"])  # fmt: skip
def test_a_garbage_cache_json_is_named(tmp_path, content):
    cache = make_cache(tmp_path / "cache")
    meta = cache.path / "cache.json"
    meta.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(CacheError) as error:
        KeypointCache(cache.path)
    assert str(meta) in str(error.value) and "rebuild=true" in str(error.value), str(error.value)
    with pytest.raises(CacheError, match="cache.json"):
        KeypointCache.open_for_writing(cache.path, PoseSettings.resolve().cache_key())


HOLD_A_CLAIM = """
import sys, time
from musclevision.extract import KeypointCache
claim = KeypointCache(sys.argv[1]).claim(sys.argv[2])
print("held" if claim else "refused", flush=True)
time.sleep(600)
"""


def test_a_claimed_video_is_refused_to_others_and_a_dead_owners_claim_is_taken_over(tmp_path):
    cache = make_cache(tmp_path / "cache")
    video = "PushUps/v_PushUps_g01_c01"
    owner = subprocess.Popen([sys.executable, "-c", HOLD_A_CLAIM, str(cache.path), video], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout.readline().strip() == "held"
        assert cache.claim(video) is None, "a video another process works on must not be taken"
        assert cache.claim_owner(video).startswith(f"pid {owner.pid} on ")
        mine = cache.claim("Lunges/v_Lunges_g02_c01")
        assert mine is not None and cache.claim("Lunges/v_Lunges_g02_c01") is None  # not twice in one process either
        mine.release()
        owner.kill()  # kill -9: no chance to clean up; its claim file stays, stale
        owner.wait(timeout=10)
        taken = cache.claim(video)
        assert taken is not None, "the claim of a dead process must be taken over"
        taken.release()
        assert not list((cache.path / "claims").iterdir()), "released claims leave no files"
    finally:
        owner.kill()
        owner.wait(timeout=10)


def test_tidying_removes_a_dead_owners_claim_but_not_a_live_one(tmp_path):
    """A run killed after recording a video but before releasing its claim leaves a stale claim file that no
    later run takes over (the video is done): tidying removes it, and never a claim a live process holds."""
    cache = make_cache(tmp_path / "cache")
    live, dead = "PushUps/v_PushUps_g01_c01", "Lunges/v_Lunges_g02_c01"
    owner = subprocess.Popen([sys.executable, "-c", HOLD_A_CLAIM, str(cache.path), live], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout.readline().strip() == "held"
        stale = cache.claim(dead)
        os.close(stale.fd)  # its owner died: the lock is gone, the file stays
        cache.tidy_claims()
        assert [p.name for p in (cache.path / "claims").iterdir()] == [f"{quote(live, safe='')}.claim"]
        assert cache.claim(live) is None, "a live claim survives tidying"
        owner.kill()
        owner.wait(timeout=10)
        cache.tidy_claims()
        assert not (cache.path / "claims").exists(), "no claims left: the folder goes too"
    finally:
        owner.kill()
        owner.wait(timeout=10)


def test_a_cache_without_the_asked_classes_names_the_classes_it_holds(tmp_path):
    """Training on one's own cache with the default (UCF101) classes, or with one name misspelt: the message lists
    every class the cache holds, not just those asked for that it has."""
    from musclevision.data.sources import VideoCacheSource

    make_cache(tmp_path / "cache", ids=("Squat/alice_1", "PushUp/bob_1", "Press/carol_1"))
    source = VideoCacheSource(str(tmp_path / "cache"))
    with pytest.raises(ValueError, match=r"no clips of \['BenchPress', 'Lunges'\] in .* \(it has Press, PushUp, Squat\); "
                                         r"to train on its classes: 'data.classes=\[Press,PushUp,Squat\]'"):  # fmt: skip
        source.load(["BenchPress", "Lunges"])
    with pytest.raises(ValueError, match=r"no clips of \['PushUps'\] .* \(it has Press, PushUp, Squat\); check data.classes"):
        source.load(["Squat", "PushUps", "Press"])
    assert len(source.load(["Squat", "PushUp"])) == 2


def test_scoring_a_cache_names_its_classes_the_model_does_not_know(tmp_path, caplog):
    from musclevision.data.sources import VideoCacheSource

    make_cache(tmp_path / "cache", ids=("Squat/alice_1", "Shoulder Press/bob_1"))
    with caplog.at_level("WARNING"):
        clips = VideoCacheSource(str(tmp_path / "cache")).load(["Squat", "Lunges"], require_all=False)
    assert [c.label for c in clips] == ["Squat"]
    assert "also holds clips of ['Shoulder Press'], which the model does not know: not scored" in caplog.text
    assert "has no clips of ['Lunges']: scoring the clips of ['Squat']" in caplog.text
