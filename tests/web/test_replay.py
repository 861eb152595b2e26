"""musclevision-replay: the page's engine in Node on recorded keypoints, its outputs, and its mistakes-handling.

Fast: synthetic keypoints and tiny generated models (tests/web/conftest.py ``tiny_export``), no browser, no
MediaPipe. Real clips: test_replay_real.py.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
from dataclasses import asdict
from datetime import UTC

import numpy as np
import pytest

from helpers import fill, mounted, run_cli
from musclevision.data.synthetic import synthesize_clip
from musclevision.extract.cache import ClipRecord, KeypointCache
from musclevision.replay.engine import EngineProcess, Keypoints, ReplayError

COLUMNS = ["exercise", "start", "end", "start_s", "end_s", "duration_s", "reps", "ongoing"]


def synthetic(label: str, seed: int, seconds: float = 8.0) -> tuple[Keypoints, int]:
    clip = synthesize_clip(label, np.random.default_rng(seed), seconds=seconds, missing_rate=0.0)
    times = np.arange(clip.frames) * 1000.0 / clip.fps
    return Keypoints(clip.video_id, clip.image, clip.world, times, clip.width, clip.height, label), len(clip.rep_ends)


def test_engine_process_replays_like_the_page(tiny_export):
    card = tiny_export(world=True, favour="BodyWeightSquats")
    clip, true_reps = synthetic("BodyWeightSquats", seed=4)
    with EngineProcess(card) as engine:
        auto = engine.replay(clip, "auto")
        given = engine.replay(clip, "BodyWeightSquats")
    trace = auto["trace"]
    assert len(trace["t"]) == clip.frames
    assert trace["state"][0] in ("no_person", "buffering") and trace["state"][-1] == "exercise"
    assert set(trace["label"][20:]) == {"BodyWeightSquats"}
    assert [r["exercise"] for r in auto["rows"]] == ["BodyWeightSquats"] and auto["rows"][0]["ongoing"] is False
    assert auto["csv"].splitlines()[0] == ",".join(COLUMNS)
    assert auto["json"]["format"] == "musclevision-session/2" and auto["json"]["columns"] == COLUMNS
    # the synthetic squats' true reps (from the generator): counted alike with the exercise given or recognised
    assert abs(given["json"]["reps_total"]["BodyWeightSquats"] - true_reps) <= 1
    assert auto["json"]["reps_total"] == given["json"]["reps_total"]
    assert [e["exercise"] for e in auto["events"]] == ["BodyWeightSquats"] * len(auto["events"])


def test_engine_process_refuses_bad_input(tiny_export, tmp_path):
    with pytest.raises(ReplayError, match="does not exist"):
        EngineProcess(tmp_path / "missing.json")
    card = tiny_export()
    (card.parent / "tiny.onnx").unlink()
    with pytest.raises(ReplayError, match="ONNX model .* is missing"):
        EngineProcess(card)
    broken = tmp_path / "broken.json"
    broken.write_text('{"format": "musclevision-model-card/2", "name": "x"}')
    with pytest.raises(ReplayError, match="model card .*broken.json"):
        EngineProcess(broken)
    with EngineProcess(tiny_export(name="ok")) as engine:
        with pytest.raises(ReplayError, match="mode='Yoga'"):
            engine.replay(synthetic("PushUps", 1, 2.0)[0], "Yoga")


def write_cache(root, clips: list[Keypoints], failed: list[str], partial: dict[str, str] | None = None) -> KeypointCache:
    cache = KeypointCache.open_for_writing(root, {"test": True})
    for clip in clips:
        n = clip.frames
        status, error = ("partial", partial[clip.video_id]) if clip.video_id in (partial or {}) else ("ok", None)
        record = ClipRecord(clip.video_id, clip.label, "g01", "x", status, error, n, n, n, 1.0, 25.0, 320, 240, "", 1, 1, 0.0,
                            "now")  # fmt: skip
        cache.write(record, clip.image, clip.world, clip.timestamps_ms.astype(np.int64))
    for video_id in failed:
        error = "no person detected in any of its 90 frames"
        label = video_id.split("/")[0]
        cache.write(
            ClipRecord(video_id, label, "g01", "x", "failed", error, 90, 90, 0, 0.0, 25.0, 320, 240, "", 1, 1, 0.0, "now")
        )
    return cache


def test_cli_replays_a_cache_batch_and_records_failures(tiny_export, tmp_path):
    card = tiny_export(world=True, favour="PushUps")
    clips = [synthetic("PushUps", seed=s, seconds=4.0)[0] for s in (1, 2)]
    clips[0].video_id, clips[1].video_id = "PushUps/v_PushUps_g01_c00", "PushUps/v_PushUps_g01_c02"
    short = synthetic("PushUps", seed=3, seconds=0.2)[0]  # 5 frames: shorter than the model's window (8)
    short.video_id = "PushUps/v_PushUps_g01_c03"
    truncated = "truncated: the container declares 72 frames but only 10 decode; re-copy the file for the rest"
    write_cache(tmp_path / "cache", [*clips, short], failed=["BenchPress/v_BenchPress_g01_c01"],
                partial={short.video_id: truncated})  # fmt: skip
    out = tmp_path / "out"
    done = run_cli("replay", "--cache", str(tmp_path / "cache"), "--export", str(card), "--out", str(out), "--mode", "label")
    assert done.returncode == 1, done.stderr  # one video could not be replayed: recorded, the batch went on
    assert "BenchPress/v_BenchPress_g01_c01" in done.stdout and "no person detected" in done.stdout
    summary = list(csv.DictReader(open(out / "summary.csv")))
    assert [(r["video"], r["status"]) for r in summary] == [
        ("BenchPress/v_BenchPress_g01_c01", "failed"), ("PushUps/v_PushUps_g01_c00", "ok"), ("PushUps/v_PushUps_g01_c02", "ok"),
        ("PushUps/v_PushUps_g01_c03", "partial"),
    ]  # fmt: skip
    # the damaged clip's frames were replayed, and the summary says why it is partial and why nothing was logged
    note = summary[3]["note"]
    assert note.startswith(truncated) and "never classified: the model needs" in note, note
    assert summary[1]["note"] == summary[2]["note"] == ""
    assert "PushUps/v_PushUps_g01_c03" in done.stdout and "never classified" in done.stdout
    for clip in clips:
        base = out / clip.video_id
        rows = list(csv.DictReader(io.StringIO((base.parent / f"{base.name}.csv").read_text())))
        assert list(rows[0]) == COLUMNS and rows[0]["exercise"] == "PushUps" and rows[0]["ongoing"] == "false"
        data = json.loads((base.parent / f"{base.name}.json").read_text())
        assert data["bouts"][0]["reps"] == int(rows[0]["reps"])
        trace = json.loads((base.parent / f"{base.name}.trace.json").read_text())
        assert len(trace["t"]) == clip.frames and trace["label"][-1] == "PushUps"
        assert (base.parent / f"{base.name}.png").stat().st_size > 10_000


@pytest.mark.parametrize(
    "args, message",
    [
        (["--cache", "{tmp}/nowhere"], "is not a keypoint cache"),
        (["{tmp}/no-such-video.mp4"], "does not exist"),
        (["--cache", "{cache}", "--videos", "Nope/*"], "no video in"),
        (["--cache", "{cache}", "--mode", "Yoga"], "--mode 'Yoga'"),
        (["--cache", "{cache}", "--export", "{tmp}/missing.json"], "does not exist"),
        (["--cache", "{cache}", "--threshold", "2"], "--threshold 2.0 must be between 0 and 1"),
        ([], "give video files/folders, or --cache"),
    ],
)
def test_cli_mistakes_are_one_line_errors(tiny_export, tmp_path, args, message):
    card = tiny_export()
    write_cache(tmp_path / "cache", [synthetic("PushUps", 1, 2.0)[0]], failed=[])
    args = [a.format(tmp=tmp_path, cache=tmp_path / "cache") for a in args]
    if "--export" not in args:
        args += ["--export", str(card)]
    done = run_cli("replay", *args, "--out", str(tmp_path / "out"))
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert not (tmp_path / "out").exists()  # a wrong command leaves nothing behind
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert message in done.stderr and len(errors) <= 3, done.stderr  # argparse adds its usage line
    assert "Traceback" not in done.stderr


def test_a_read_only_or_full_output_folder_is_one_line(tiny_export, tmp_path):
    """Checked before any work (the extractor's workers log there); a disk that fills up mid-batch stops the batch
    with one line, not a traceback."""
    card = tiny_export(world=True, favour="PushUps")
    write_cache(tmp_path / "cache", [synthetic("PushUps", seed=s, seconds=2.0)[0] for s in (1, 2)], failed=[])
    (tmp_path / "folder").mkdir()
    with mounted(tmp_path / "read-only", "--bind", str(tmp_path / "folder")) as read_only:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(read_only)], check=True)
        done = run_cli("replay", "--cache", str(tmp_path / "cache"), "--export", str(card), "--out", str(read_only / "out"))
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert f"cannot write {read_only / 'out'} (Read-only file system); that folder is read-only" in done.stderr
    with mounted(tmp_path / "small", "-t", "tmpfs", "-o", "size=256k", "tmpfs") as small:
        fill(small)  # room for an empty file (the check), not for a replay's outputs
        done = run_cli("replay", "--cache", str(tmp_path / "cache"), "--export", str(card), "--out", str(small / "out"))
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "(No space left on device); that disk is full" in done.stderr and "(0 videos were done before)" in done.stderr


def test_keypoints_file_layout(tiny_export):
    """The binary clip file the Node runner reads: float64 times, then float32 image and world, NaN rows kept."""
    clip, _ = synthetic("Lunges", 2, 2.0)
    clip.image[5] = np.nan
    clip.world[5] = np.nan
    with EngineProcess(tiny_export(world=True)) as engine:
        result = engine.replay(clip)
    assert result["trace"]["t"] == pytest.approx(list(clip.timestamps_ms))
    assert asdict(clip)["video_id"] == result["id"]


def test_replay_landmarks_videos_with_the_settings_the_page_reads_from_the_card(assets_ready):
    """musclevision-replay on videos and the page (``poseOptions`` in pose.js) take the same pose settings from a
    card's pose_model block: all of them, and for a card that does not record one (made before it existed), the
    extractor's value of then (no rotations or zoom-out, one person, no checks) on both sides."""
    import shutil
    import subprocess

    from musclevision.card import PoseModel
    from musclevision.extract.landmarker import PoseSettings
    from musclevision.paths import project_root
    from musclevision.replay.cli import pose_options

    now = PoseSettings.resolve()
    current = {"variant": now.model, "bundle": f"pose_landmarker_{now.model}.task", **now.cache_key()}
    old = {k: v for k, v in current.items() if k not in ("rotations", "retry_every", "zoom_out", "num_poses", "people_check_s",
                                                          "selector")}  # fmt: skip
    old.update(min_pose_detection_confidence=0.5, min_pose_presence_confidence=0.5)
    blocks = [current, old]
    node = shutil.which("node")
    assert node, "Node 20 is needed for the page's JS tests"
    pose_js = (project_root() / "src/musclevision/web/static/js/pose.js").as_uri()
    script = (f"import {{ poseOptions }} from {json.dumps(pose_js)};\n"
              "let t = ''; for await (const c of process.stdin) t += c;\n"
              "console.log(JSON.stringify(JSON.parse(t).map(poseOptions)));")  # fmt: skip
    done = subprocess.run([node, "--input-type=module", "-e", script], input=json.dumps(blocks), capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    names = dict(minDetection="min_pose_detection_confidence", minPresence="min_pose_presence_confidence",
                 minTracking="min_tracking_confidence", rotations="rotations", retryEvery="retry_every",
                 zoomOut="zoom_out", numPoses="num_poses", peopleCheckS="people_check_s")  # fmt: skip
    for block, page in zip(blocks, json.loads(done.stdout), strict=True):
        ours = pose_options(PoseModel.model_validate(block))
        assert {names[k]: v for k, v in page.items() if k in names} == {k: ours[k] for k in names.values()}, block
    assert PoseSettings.resolve(**pose_options(PoseModel.model_validate(current))).cache_key() == now.cache_key()
    assert (
        pose_options(PoseModel.model_validate(old))["zoom_out"] == 1
        and pose_options(PoseModel.model_validate(old))["rotations"] == []
    )


def _box(kind: bytes, payload: bytes, large: bool = False) -> bytes:
    import struct

    return (
        struct.pack(">I4sQ", 1, kind, 16 + len(payload)) + payload
        if large
        else struct.pack(">I4s", 8 + len(payload), kind) + payload
    )


def test_recording_time_is_the_mp4_movie_headers_and_nothing_else(tmp_path):
    """The session log's wall-clock columns of a replayed video come from its MP4/MOV movie header, or are left empty."""
    import struct
    from datetime import datetime

    from musclevision.extract.video import MP4_EPOCH_S, recording_time_ms

    when = datetime(2026, 3, 14, 9, 26, 53, tzinfo=UTC).timestamp()
    mvhd0 = _box(b"mvhd", b"\0\0\0\0" + struct.pack(">II", int(when) + MP4_EPOCH_S, 0) + bytes(88))
    mvhd1 = _box(b"mvhd", b"\1\0\0\0" + struct.pack(">QQ", int(when) + MP4_EPOCH_S, 0) + bytes(96))
    cases = {
        "v0.mp4": (_box(b"ftyp", b"isom" + bytes(8)) + _box(b"mdat", bytes(1000)) + _box(b"moov", mvhd0), when * 1000),
        "v1-large.mov": (
            _box(b"ftyp", b"qt  " + bytes(4)) + _box(b"moov", _box(b"udta", bytes(5)) + mvhd1, large=True),
            when * 1000,
        ),
        "unset.mp4": (_box(b"moov", _box(b"mvhd", bytes(100))), None),  # 0 = 1904: not a time
        "mvhd-outside-moov.mp4": (_box(b"mvhd", mvhd0[8:]), None),
        "truncated.mp4": ((_box(b"ftyp", b"isom" + bytes(8)) + _box(b"moov", mvhd0))[:30], None),
        "cut-after-mvhd-header.mp4": (struct.pack(">I4sI4s", 100, b"moov", 92, b"mvhd"), None),
        "clip.avi": (b"RIFF" + struct.pack("<I", 100) + b"AVI LIST" + bytes(92), None),
        "zero-size-box.mp4": (struct.pack(">I4s", 0, b"free") + bytes(50), None),
    }
    for name, (data, expected) in cases.items():
        (tmp_path / name).write_bytes(data)
        assert recording_time_ms(tmp_path / name) == expected, name
    assert recording_time_ms(tmp_path / "missing.mp4") is None


def _ebml(element: int, payload: bytes, unknown_size: bool = False) -> bytes:
    """One Matroska element: its id (marker kept), an 8-byte size (or 'unknown'), the payload."""
    ident = element.to_bytes((element.bit_length() + 7) // 8, "big")
    size = b"\x01\xff\xff\xff\xff\xff\xff\xff" if unknown_size else (0x01 << 56 | len(payload)).to_bytes(8, "big")
    return ident + size + payload


def test_recording_time_of_matroska_and_webm_is_the_segment_date(tmp_path):
    """Matroska/WebM: Info/DateUTC (nanoseconds since 2001), found before the first cluster, in a segment of known or
    unknown size (a live recording's); a file without it, or with it only after a cluster, says nothing."""
    import struct
    from datetime import datetime

    from musclevision.extract.video import MKV_EPOCH_S, recording_time_ms

    when = datetime(2026, 3, 14, 9, 26, 53, tzinfo=UTC).timestamp()
    date = _ebml(0x4461, struct.pack(">q", int((when - MKV_EPOCH_S) * 1e9)))
    header = _ebml(0x1A45DFA3, _ebml(0x4282, b"webm"))
    info = _ebml(0x1549A966, _ebml(0x2AD7B1, struct.pack(">I", 1000000)) + date)
    cluster = _ebml(0x1F43B675, bytes(64))
    cases = {
        "dated.mkv": (header + _ebml(0x18538067, _ebml(0x114D9B74, bytes(20)) + info + cluster), when * 1000),
        "live.webm": (header + _ebml(0x18538067, info + cluster, unknown_size=True), when * 1000),
        "undated.webm": (header + _ebml(0x18538067, _ebml(0x1549A966, b"") + cluster, unknown_size=True), None),
        "date-after-cluster.mkv": (header + _ebml(0x18538067, cluster + info), None),
        "cut.mkv": ((header + _ebml(0x18538067, info))[:-4], None),
        "garbage.mkv": (b"\x1a\x45\xdf\xa3" + bytes(40), None),
    }
    for name, (data, expected) in cases.items():
        (tmp_path / name).write_bytes(data)
        assert recording_time_ms(tmp_path / name) == expected, name
