"""Extraction stage under trouble, through the real ``musclevision-extract`` console script:
damaged and odd inputs, kill -9 then resume, orphaned workers, SLURM-style shards writing one
cache concurrently, and a terminal free of MediaPipe's native log lines.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import (
    LOG_SPAM,
    SHORT_CLIPS,
    assert_clip_consistent,
    cli_command,
    cli_env,
    fill,
    flat,
    link_clips,
    manifest_lines,
    mounted,
    run_extract,
)
from musclevision.data import KeypointCache
from musclevision.extract import CacheError

pytestmark = pytest.mark.integration  # real videos and MediaPipe

GOOD = "PushUps/v_PushUps_g16_c04"  # 29 frames, a person in every one


def write_no_person_video(path: Path, frames: int = 40) -> None:
    """A real MJPG .avi of a plain grey wall with a little sensor noise: decodes fine, nobody in it."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (320, 240))
    assert writer.isOpened()
    rng = np.random.default_rng(0)
    for _ in range(frames):
        writer.write(np.clip(128 + rng.normal(0, 3, (240, 320, 3)), 0, 255).astype(np.uint8))
    writer.release()


def write_png(path: Path) -> None:
    """A real PNG image under a video name (a user's renamed screenshot)."""
    import cv2

    assert cv2.imwrite(str(path.with_suffix(".png")), np.zeros((48, 64, 3), np.uint8))
    path.with_suffix(".png").rename(path)


def assert_no_log_spam(text: str) -> None:
    leaked = [line for line in text.splitlines() if any(s in line for s in LOG_SPAM)]
    assert not leaked, "native MediaPipe/LiteRT log lines reached the terminal:\n" + "\n".join(leaked[:10])


def test_bad_inputs_are_recorded_with_reasons_and_the_good_clip_survives(tmp_path, ucf_videos):
    videos = link_clips(ucf_videos, [GOOD], tmp_path / "videos")
    bad = tmp_path / "videos" / "Bad"
    bad.mkdir()
    (bad / "empty.avi").write_bytes(b"")
    (bad / "random.avi").write_bytes(np.random.default_rng(1).bytes(200_000))
    real = (ucf_videos / "Lunges/v_Lunges_g20_c02.avi").read_bytes()  # 47 frames
    (bad / "truncated.avi").write_bytes(real[: len(real) // 2])
    (bad / "notes.mp4").write_text("not a video: notes about the squat session\n" * 20)
    write_png(bad / "image.avi")  # decord's error quotes the path as "[/.../image.avi]": rich markup if unescaped
    write_no_person_video(bad / "noperson.avi")
    (bad / "readme.txt").write_text("not a video extension: ignored")
    cache_dir = tmp_path / "cache"

    result = run_extract(tmp_path, f"video_root={videos}", f"cache_dir={cache_dir}", "workers=2")
    out = flat(result.stdout)
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)

    cache = KeypointCache(cache_dir)
    records = cache.records()
    assert set(records) == {GOOD, "Bad/empty", "Bad/random", "Bad/truncated", "Bad/notes", "Bad/noperson", "Bad/image"}
    assert records[GOOD].status == "ok" and records[GOOD].frames_decoded == 29
    assert_clip_consistent(cache, GOOD)
    expected = {
        "Bad/empty": "empty file (0 bytes)",
        "Bad/random": "not a readable video",
        "Bad/notes": "not a readable video",
        "Bad/image": "not a readable video",
        "Bad/noperson": "no person detected in any of its 40 frames",
    }
    for video_id, reason in expected.items():
        record = records[video_id]
        assert record.status == "failed" and reason in record.error, (video_id, record.status, record.error)
        assert not cache.clip_path(video_id).exists()
        assert video_id in out and reason in out, f"{video_id} / {reason!r} missing from the CLI summary:\n{result.stdout}"
    assert records["Bad/noperson"].frames_decoded == 40 and records["Bad/noperson"].frames_detected == 0

    truncated = records["Bad/truncated"]
    assert truncated.status == "partial" and "truncated" in truncated.error, (truncated.status, truncated.error)
    assert truncated.frames_declared == 47 and 0 < truncated.frames_decoded < 47, truncated
    assert f"declares 47 frames but only {truncated.frames_decoded} decode" in truncated.error
    clip = assert_clip_consistent(cache, "Bad/truncated")  # the frames that exist were kept
    assert clip.record.frames_detected > 0
    assert {r.video_id for r in cache.videos()} == {GOOD, "Bad/truncated"}
    assert {r.video_id for r in cache.failures()} == set(expected)
    with pytest.raises(KeyError, match="failed to extract: .*empty file"):
        cache.load("Bad/empty")

    # Summary: counts, frames, detection, wall time; the failures listed; no native log lines.
    assert "7 selected: 1 ok, 1 partial, 5 failed, 0 already done" in out, result.stdout
    assert "1 video is only partly usable" in flat(result.stderr), result.stderr
    assert f"[{bad / 'image.avi'}]" in out, "the decoder's own words, brackets and all"
    assert "Traceback" not in result.stderr, result.stderr
    frames = 29 + truncated.frames_decoded + 40
    assert f"frames {frames} decoded" in out and "with a person" in out, result.stdout
    assert " s, " in out and "frames/s with 2 workers" in out, result.stdout
    assert "videos with problems" in out and "partial" in out
    assert "7/7" in result.stderr, "the progress bar should end at 7/7 videos"
    assert_no_log_spam(result.stdout + result.stderr)
    assert "Sparsity" in (cache_dir / "logs" / "workers.log").read_text(), "the native output belongs in the log"

    # A plain re-run skips everything, still reports the earlier failures (exit 1), writes nothing.
    lines = len(manifest_lines(cache_dir))
    again = run_extract(tmp_path, f"video_root={videos}", f"cache_dir={cache_dir}", "workers=2")
    assert again.returncode == 1, (again.returncode, again.stdout, again.stderr)
    assert "5 failures are from earlier runs; retry them" in flat(again.stdout)
    # the counts add up (the failures are among those already done), and the partly usable one is listed again, not
    # hidden behind "already done"
    assert "7 selected: 0 ok, 0 partial, 0 failed, 7 already done (5 of them failed, 1 of them only partly usable)" in (
        flat(again.stdout)
    ), again.stdout
    assert "Bad/truncated" in again.stdout and "1 video is only partly usable" in flat(again.stderr), again.stderr
    assert len(manifest_lines(cache_dir)) == lines


def process_group(pgid: int) -> dict[int, str]:
    """Processes of a process group: ``{pid: state}`` (state Z = a zombie, already dead)."""
    members = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) "
        if int(fields[2]) == pgid:
            members[int(entry.name)] = fields[0]
    return members


def alive(pids) -> list[int]:
    states = {}
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        states[pid] = text[text.rindex(")") + 2]
    return [pid for pid, state in states.items() if state not in "ZX"]


def wait_until(condition, timeout: float, step: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    return condition()


def valid_manifest_ids(cache_dir: Path) -> list[str]:
    path = cache_dir / "manifest.jsonl"
    if not path.exists():
        return []
    ids = []
    for line in path.read_text().splitlines():
        try:
            ids.append(json.loads(line)["video_id"])
        except (json.JSONDecodeError, KeyError):
            pass
    return ids


def start_cli(tmp: Path, log_name: str, *overrides: str) -> subprocess.Popen:
    log = open(tmp / log_name, "w")
    # Its own session = its own process group, so the whole tree can be killed like SLURM/Ctrl-C do. Ctrl-C as at a
    # terminal: pytest-xdist's workers ignore SIGINT, and a child would inherit that (Python then never raises
    # KeyboardInterrupt).
    return subprocess.Popen(cli_command(tmp, *overrides), stdout=log, stderr=subprocess.STDOUT, env=cli_env(),
                            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip


def short_clip_run(tmp: Path, ucf_videos: Path, count: int, workers: int = 1) -> tuple[list[str], Path, tuple]:
    """``count`` of the shortest real clips, a cache folder and the extractor options for them."""
    ids = SHORT_CLIPS[:count]
    videos = link_clips(ucf_videos, ids, tmp / "videos")
    cache_dir = tmp / "cache"
    return ids, cache_dir, (f"video_root={videos}", f"cache_dir={cache_dir}", f"workers={workers}", "progress=false")


def run_concurrently(tmp: Path, runs: dict[str, tuple]) -> tuple[list[int], list[str]]:
    """Start one extractor CLI per ``{log name: overrides}`` at once; their exit codes and outputs."""
    procs = [start_cli(tmp, name, *overrides) for name, overrides in runs.items()]
    try:
        codes = [p.wait(timeout=300) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                kill_group(p)
    return codes, [(tmp / name).read_text() for name in runs]


def kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


def test_ctrl_c_says_how_many_videos_this_run_saved(tmp_path, ucf_videos):
    ids = SHORT_CLIPS[:8]
    videos = link_clips(ucf_videos, ids, tmp_path / "videos")
    cache_dir = tmp_path / "cache"
    proc = start_cli(tmp_path, "run.log", f"video_root={videos}", f"cache_dir={cache_dir}", "workers=2", "progress=false")
    try:
        got_one = wait_until(lambda: valid_manifest_ids(cache_dir) or proc.poll() is not None, timeout=240)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C at a terminal sends: the whole foreground group
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            kill_group(proc)
    log = flat((tmp_path / "run.log").read_text())
    assert got_one and proc.returncode == 130, (proc.returncode, log[-2000:])
    saved = len(valid_manifest_ids(cache_dir))
    assert 1 <= saved < len(ids), f"interrupted with {saved} of {len(ids)} videos recorded"
    said = re.search(r"interrupted: (\d+) videos? (is|are) finished and saved by this run; run the same command again to "
                     r"resume", log)  # fmt: skip
    assert said, log[-2000:]
    # the count the progress saw: the interrupt may fall between a video's manifest line and its progress step
    assert saved - 1 <= int(said.group(1)) <= saved and (said.group(2) == "is") == (int(said.group(1)) == 1), said.group(0)


def test_kill_mid_run_then_resume_redoes_only_the_missing_videos(tmp_path, ucf_videos):
    ids = SHORT_CLIPS[:8]
    videos = link_clips(ucf_videos, ids, tmp_path / "videos")
    cache_dir = tmp_path / "cache"
    args = (f"video_root={videos}", f"cache_dir={cache_dir}", "workers=2", "progress=false")
    proc = start_cli(tmp_path, "first.log", *args)
    try:
        got_one = wait_until(lambda: valid_manifest_ids(cache_dir) or proc.poll() is not None, timeout=240)
        members = process_group(proc.pid)
        kill_group(proc)
    finally:
        if proc.poll() is None:
            kill_group(proc)
    assert got_one and proc.returncode == -signal.SIGKILL, (
        f"the run ended by itself (rc {proc.returncode}) before it could be killed:\n{(tmp_path / 'first.log').read_text()}"
    )
    done_before = valid_manifest_ids(cache_dir)
    assert 1 <= len(done_before) < len(ids), f"killed with {len(done_before)} of {len(ids)} videos recorded"
    workers = [pid for pid in members if pid != proc.pid]
    assert len(workers) >= 2, f"expected worker processes under the CLI at kill time, saw {members}"
    assert wait_until(lambda: not alive(members), timeout=5), f"processes survived the kill: {alive(members)}"
    assert not alive(process_group(proc.pid)), "orphaned processes left in the killed process group"

    # What the reader sees right after the kill: only whole, recorded clips.
    cache = KeypointCache(cache_dir)
    visible = [r.video_id for r in cache.videos()]
    assert sorted(visible) == sorted(set(done_before)), (visible, done_before)
    for video_id in visible:
        assert_clip_consistent(cache, video_id)
    for npz in (cache_dir / "clips").rglob("*.npz"):  # renamed into place only when complete
        with np.load(npz) as data:
            assert data["image"].shape[1:] == (33, 4)
    leftovers = [p for p in (cache_dir / "clips").rglob("*") if p.is_file() and p.suffix != ".npz"]
    assert all(p.name.endswith(".tmp") for p in leftovers), leftovers  # invisible to the reader
    # The killed run's claims stay behind (their locks died with it): the next run takes them over.
    assert {p.name for p in cache_dir.iterdir()} <= {"cache.json", "manifest.jsonl", "clips", "logs", "claims"}

    # Resume: same command, only the missing videos are processed.
    result = run_extract(tmp_path, *args)
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    out = flat(result.stdout)
    skipped = len(set(done_before))
    assert f"{len(ids)} selected: {len(ids) - skipped} ok, 0 partial, 0 failed, {skipped} already done" in out, out
    final = valid_manifest_ids(cache_dir)
    assert sorted(final) == sorted(ids), "every video exactly once: finished ones were not redone"
    assert not (cache_dir / "claims").exists(), "stale claims taken over, then released and tidied"
    assert final[: len(done_before)] == done_before
    cache = KeypointCache(cache_dir)
    assert sorted(r.video_id for r in cache.videos()) == sorted(ids)
    for video_id in ids:
        assert_clip_consistent(cache, video_id)
    assert_no_log_spam(result.stdout + result.stderr + (tmp_path / "first.log").read_text())


def test_workers_exit_when_only_the_main_process_is_killed(tmp_path, ucf_videos):
    """kill -9 of the main process alone (the OOM killer, ``kill -9 <pid>``) must not leave idle
    workers holding a MediaPipe model in memory forever."""
    videos = link_clips(ucf_videos, SHORT_CLIPS[3:7], tmp_path / "videos")
    proc = start_cli(tmp_path, "run.log", f"video_root={videos}", f"cache_dir={tmp_path / 'cache'}", "workers=2",
                     "progress=false")  # fmt: skip
    try:
        wait_until(lambda: valid_manifest_ids(tmp_path / "cache") or proc.poll() is not None, timeout=240)
        workers = [pid for pid in process_group(proc.pid) if pid != proc.pid]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert workers, "no worker processes seen"
        gone = wait_until(lambda: not alive(workers), timeout=10, step=0.2)
        assert gone, f"workers {alive(workers)} outlived the main process"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_two_shards_fill_one_cache_concurrently(tmp_path, ucf_videos):
    ids, cache_dir, args = short_clip_run(tmp_path, ucf_videos, 6)
    codes, logs = run_concurrently(tmp_path, {f"shard{i}.log": (*args, f"shard={i}/2") for i in range(2)})
    assert codes == [0, 0], (codes, logs)
    for log in logs:
        assert "3 selected: 3 ok" in flat(log), log
        assert_no_log_spam(log)
    lines = manifest_lines(cache_dir)
    assert sorted(line["video_id"] for line in lines) == sorted(ids), "each video recorded exactly once, none lost"
    cache = KeypointCache(cache_dir)
    assert sorted(r.video_id for r in cache.videos()) == sorted(ids)
    for video_id in ids:
        assert_clip_consistent(cache, video_id)
    assert sorted(p.name for p in cache_dir.iterdir()) == ["cache.json", "clips", "logs", "manifest.jsonl"]
    assert not list(cache_dir.rglob("*.tmp"))
    assert json.loads((cache_dir / "cache.json").read_text())["extractor"] == cache.settings


@pytest.mark.integration
def test_a_rerun_redoes_a_damaged_cache_entry_and_only_it(tmp_path, ucf_videos):
    ids, cache_dir, args = short_clip_run(tmp_path, ucf_videos, 2)
    assert run_extract(tmp_path, *args).returncode == 0
    damaged = KeypointCache(cache_dir).clip_path(ids[0])
    damaged.write_bytes(damaged.read_bytes()[:4000])  # cut short, as a full disk or a bad copy leaves it

    result = run_extract(tmp_path, *args)
    out = flat(result.stdout)
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    assert "2 selected: 1 ok, 0 partial, 0 failed, 1 already done" in out, out
    assert f"1 damaged cache entries were redone: {ids[0]}" in out, out
    assert_clip_consistent(KeypointCache(cache_dir), ids[0])

    # The command the load error offers redoes exactly that entry.
    damaged.write_bytes(b"\0" * damaged.stat().st_size)
    with pytest.raises(CacheError, match=r"videos=\[") as error:
        KeypointCache(cache_dir).load(ids[0])
    command = re.search(r"`musclevision-extract (.*?)`", str(error.value)).group(1).split()
    result = run_extract(tmp_path, *command, "workers=1", "progress=false")
    assert result.returncode == 0 and "1 selected: 1 ok" in flat(result.stdout), (result.stdout, result.stderr)
    assert_clip_consistent(KeypointCache(cache_dir), ids[0])
    assert sorted(valid_manifest_ids(cache_dir)) == sorted([*ids, ids[0], ids[0]])


@pytest.mark.integration
def test_two_extractors_on_one_cache_split_the_work(tmp_path, ucf_videos):
    """Two terminals (or an array job without shard=) on one cache: each video is extracted once."""
    ids, cache_dir, args = short_clip_run(tmp_path, ucf_videos, 8)
    codes, logs = run_concurrently(tmp_path, {f"run{i}.log": args for i in range(2)})
    logs = [flat(log) for log in logs]
    assert codes == [0, 0], (codes, logs)
    assert sorted(valid_manifest_ids(cache_dir)) == sorted(ids), "each video extracted and recorded exactly once"
    done = [int(re.search(r"8 selected: (\d+) ok", log).group(1)) for log in logs]
    assert sum(done) == len(ids) and min(done) >= 1, f"the two runs should share the work: {done}\n{logs}"
    cache = KeypointCache(cache_dir)
    for video_id in ids:
        assert_clip_consistent(cache, video_id)
    assert not (cache_dir / "claims").exists()


@pytest.mark.integration
def test_a_full_disk_stops_with_one_line_and_keeps_what_is_done(tmp_path, ucf_videos):
    ids = SHORT_CLIPS[:3]
    with mounted(tmp_path / "disk", "-t", "tmpfs", "-o", "size=4m", "tmpfs") as disk:
        cache_dir = disk / "cache"
        first = link_clips(ucf_videos, ids[:1], tmp_path / "first")
        assert run_extract(tmp_path, f"video_root={first}", f"cache_dir={cache_dir}", "workers=1").returncode == 0
        fill(disk)
        videos = link_clips(ucf_videos, ids, tmp_path / "videos")
        args = (f"video_root={videos}", f"cache_dir={cache_dir}", "workers=1", "progress=false")
        result = run_extract(tmp_path, *args)
        assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
        assert "Traceback" not in result.stdout + result.stderr, result.stderr
        message = flat(result.stderr)
        assert f"cannot write {cache_dir}/" in message and "(No space left on device)" in message, message
        assert "0 of the 2 videos to do were stored before it, and kept" in message, message
        cache = KeypointCache(cache_dir)
        assert [r.video_id for r in cache.videos()] == ids[:1]
        assert_clip_consistent(cache, ids[0])
        assert not list(cache_dir.rglob("*.tmp")), "no half-written files left"

        (disk / "filler").unlink()
        result = run_extract(tmp_path, *args)
        assert result.returncode == 0, (result.stdout, result.stderr)
        assert "3 selected: 2 ok, 0 partial, 0 failed, 1 already done" in flat(result.stdout)
        assert sorted(valid_manifest_ids(cache_dir)) == sorted(ids)


@pytest.mark.integration
def test_a_read_only_cache_lacking_a_clip_names_the_folder_not_the_pose_model(tmp_path, ucf_videos):
    ids = SHORT_CLIPS[:2]
    cache_dir = tmp_path / "cache"
    first = link_clips(ucf_videos, ids[:1], tmp_path / "first")
    assert run_extract(tmp_path, f"video_root={first}", f"cache_dir={cache_dir}", "workers=1").returncode == 0
    videos = link_clips(ucf_videos, ids, tmp_path / "videos")
    read_only = tmp_path / "read-only"
    with mounted(read_only, "--bind", str(cache_dir)):
        subprocess.run(["mount", "-o", "remount,ro,bind", str(read_only)], check=True)
        result = run_extract(tmp_path, f"video_root={videos}", f"cache_dir={read_only}", "workers=1")
        assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
        message = flat(result.stderr)
        assert "Traceback" not in result.stderr and "pose model" not in message, message
        assert f"1 video to extract, but cannot write {read_only} (Read-only file system)" in message, message
        # Complete for what is asked: a read-only cache is fine.
        result = run_extract(tmp_path, f"video_root={first}", f"cache_dir={read_only}", "workers=1")
        assert result.returncode == 0 and "1 already done" in flat(result.stdout), (result.stdout, result.stderr)
        assert KeypointCache(read_only).load(ids[0]).image.shape[1:] == (33, 4)


def test_a_text_file_that_opens_as_a_stream_is_not_a_readable_video(tmp_path):
    """ffmpeg opens a .txt as a text stream with one "frame" that cannot be decoded: it must read as "not a readable
    video" naming the file (musclevision-replay takes any file it is given), not decord's bare RuntimeError."""
    from musclevision.extract.video import VideoError, open_video

    memo = tmp_path / "memo.txt"
    memo.write_text("hello world, not a video\n")
    with pytest.raises(VideoError, match=r"memo\.txt: not a readable video .*ffmpeg can decode"):
        open_video(memo)
