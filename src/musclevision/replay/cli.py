"""``musclevision-replay``: what the live page would have shown, for recorded videos, without a browser.

    musclevision-replay workout.mp4 more-videos/ --export exports/best.json --out replays/
    musclevision-replay --cache data/cache/ucf101-full --videos 'PushUps/*' --mode label --out replays/

Videos are landmarked by the extractor (the page's pose model, from the card), or keypoints are read from a
keypoint cache; the ONNX model and the page's own engine (web/static/js/engine.js, in Node) then make the
page's decisions frame by frame. Per video: ``<id>.csv`` and ``<id>.json`` (the session log, as the page
downloads it; times in the video are ``start_s``/``end_s``), ``<id>.trace.json`` (every frame: state, shown
exercise, probabilities, rep events) and ``<id>.png`` (the timeline). ``summary.csv`` lists every video,
failures included; MediaPipe's own messages (videos in) go to ``logs/workers.log`` there. A video that cannot be used
is recorded and the batch goes on; a damaged one whose readable frames were replayed is "partial" (either: exit 1 at
the end). Its ``note`` says why, and when the model never classified anything (no person, or too few frames with a
person for its window).
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from musclevision.extract.discover import VIDEO_EXTENSIONS, VideoSource, group_of
from musclevision.extract.progress import LogLines
from musclevision.oserrors import check_writable, describe_write_error, is_full_or_read_only
from musclevision.paths import default_export
from musclevision.replay.engine import EngineProcess, Keypoints, ReplayError

console = Console(stderr=True)
SUMMARY_COLUMNS = ["video", "status", "frames", "seconds", "person_share", "bouts", "reps", "exercises", "error", "note"]


@dataclass
class Failure:
    video_id: str
    error: str


# -- sources -----------------------------------------------------------------------------------------
def find_video_files(paths: list[str]) -> list[tuple[str, Path]]:
    """(video id, path) for every video named or found (recursively) under a named folder; ids are unique."""
    found: dict[str, Path] = {}
    for name in paths:
        path = Path(name)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
            if not files:
                raise ReplayError(f"{path} holds no video files ({', '.join(VIDEO_EXTENSIONS)})")
            for file in files:
                found.setdefault(file.relative_to(path).with_suffix("").as_posix(), file)
        elif path.is_file():
            found.setdefault(path.stem if path.stem not in found else path.with_suffix("").as_posix(), path)
        else:
            raise ReplayError(f"{path} does not exist; give video files or folders of videos")
    return sorted(found.items())


def pose_options(pose) -> dict:
    """PoseSettings of a card's ``pose_model`` block, as the page reads it (``poseOptions`` in ``pose.js``): a setting
    the card does not record is the extractor's before that setting existed (no rotations, no zoom-out, one person).
    The exerciser rule is this extractor's own (``videos_keypoints`` warns when the card's differs)."""
    extra, absent = pose.model_extra or {}, pose.absent()
    return dict(model=pose.variant, min_pose_detection_confidence=pose.min_pose_detection_confidence,
                min_pose_presence_confidence=pose.min_pose_presence_confidence,
                min_tracking_confidence=pose.min_tracking_confidence,
                rotations=extra.get("rotations", absent["rotations"]),
                retry_every=extra.get("retry_every", absent["retry_every"]), zoom_out=pose.zoom_out,
                num_poses=pose.num_poses, people_check_s=pose.people_check_s)  # fmt: skip


def videos_keypoints(files: list[tuple[str, Path]], card, workers: int | None, log_dir: Path) -> Iterator[Keypoints | Failure]:
    """Landmark the videos with the card's pose model (the extractor pool), yielding as each finishes. MediaPipe's and
    LiteRT's own output goes to ``log_dir/workers.log``, not the terminal (as with musclevision-extract)."""
    from musclevision.extract.exerciser import SELECTOR
    from musclevision.extract.landmarker import ConfigError, PoseSettings
    from musclevision.extract.pool import ExtractorFatalError, ExtractorPool, default_workers
    from musclevision.extract.video import recording_time_ms

    pose = card.pose_model
    try:
        settings = PoseSettings.resolve(**pose_options(pose))
    except ConfigError as exc:
        raise ReplayError(f"the card's pose model cannot be used: {exc}") from None
    card_rule = (pose.model_extra or {}).get("selector")
    if settings.num_poses > 1 and card_rule not in (None, SELECTOR):
        console.print(f"[yellow]warning: the model was trained with the exerciser rule {card_rule.get('rule')!r} "
                      f"(the page uses it); this extractor has {SELECTOR['rule']!r}: who is kept among several people "
                      f"may differ[/yellow]")  # fmt: skip
    if settings.bundle_sha256 != pose.bundle_sha256:
        console.print(f"[yellow]warning: the pose bundle here differs from the one the model was trained with "
                      f"({pose.bundle}); keypoints may differ slightly[/yellow]")  # fmt: skip
    sources, recorded = [], {video_id: recording_time_ms(path) for video_id, path in files}
    for video_id, path in files:
        stat = path.stat()
        sources.append(VideoSource(video_id, path.resolve(), path.parent.name, group_of(path), stat.st_size, stat.st_mtime_ns))
    pool = ExtractorPool(settings, min(workers or default_workers(), len(sources)), log_dir=log_dir)
    try:
        for outcome in pool.run(sources):
            record, kp = outcome.record, outcome.keypoints
            if kp is None:
                yield Failure(record.video_id, record.error or "failed")
                continue
            label = record.label if record.label in card.classes else None
            meta = {"source": record.source, "recorded_ms": recorded.get(record.video_id)}
            if record.error:
                meta["partial"] = record.error
            yield Keypoints(record.video_id, kp.image, kp.world, kp.timestamps_ms, kp.width, kp.height, label, meta)
    except ExtractorFatalError as exc:
        raise ReplayError(str(exc)) from None


def cache_keypoints(cache_dir: str, patterns: list[str] | None, classes: list[str] | None) -> tuple[list, int]:
    """(loaders, how many) of the cached clips matching ``patterns`` (video ids or shell patterns) and ``classes``."""
    from musclevision.extract.cache import CacheError, KeypointCache

    try:
        cache = KeypointCache(cache_dir)
    except CacheError as exc:
        raise ReplayError(str(exc)) from None
    records = cache.records()
    wanted = [r for r in sorted(records.values(), key=lambda r: r.video_id) if not classes or r.label in classes]
    if patterns:
        wanted = [r for r in wanted if any(fnmatch.fnmatchcase(r.video_id, p) for p in patterns)]
        unmatched = [p for p in patterns if not any(fnmatch.fnmatchcase(r.video_id, p) for r in records.values())]
        if unmatched:
            raise ReplayError(f"no video in {cache_dir} matches {', '.join(unmatched)} (ids look like PushUps/v_PushUps_g08_c01)")
    if not wanted:
        raise ReplayError(f"{cache_dir} has no clips" + (f" of {', '.join(classes)}" if classes else ""))

    def load(record):
        if record.status == "failed":
            return Failure(record.video_id, f"extraction failed: {record.error}")
        try:
            clip = cache.load(record.video_id)
        except (KeyError, OSError, ValueError) as exc:
            return Failure(record.video_id, f"cannot read its keypoints: {exc}")
        meta = {"group": record.group, **({"partial": record.error} if record.status == "partial" else {})}
        return Keypoints(record.video_id, clip.image, clip.world, clip.timestamps_ms, record.width, record.height, record.label,
                         meta)  # fmt: skip

    return [(lambda r=r: load(r)) for r in wanted], len(wanted)


# -- outputs -----------------------------------------------------------------------------------------
def write_outputs(out: Path, clip: Keypoints, result: dict, card, threshold: float, plot: bool) -> dict:
    """The page's session log (CSV, JSON), the trace and the timeline of one clip; returns its summary row."""
    base = out / clip.video_id
    base.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{base}.csv").write_text(result["csv"], encoding="utf-8", newline="")
    Path(f"{base}.json").write_text(json.dumps(result["json"], indent=2) + "\n", encoding="utf-8")
    trace = {
        "video": clip.video_id,
        "true_label": clip.label,  # the class folder or the cache's label (None if unknown); "label" is per frame
        "classes": result["classes"],
        "events": result["events"],
        **result["trace"],
    }
    Path(f"{base}.trace.json").write_text(json.dumps(trace, separators=(",", ":")) + "\n", encoding="utf-8")
    if plot:
        from musclevision.replay.timeline import plot_timeline

        truth = (
            [(clip.label, 0.0, clip.frames and (clip.timestamps_ms[-1] - clip.timestamps_ms[0]) / 1000.0)] if clip.label else None
        )
        plot_timeline(result, Path(f"{base}.png"), clip.video_id, threshold, truth)
    rows = result["rows"]
    totals = result["json"]["reps_total"]
    states = result["trace"]["state"]
    person = sum(s != "no_person" for s in states) / max(1, clip.frames)
    partial = clip.meta.get("partial")
    return {"video": clip.video_id, "status": "partial" if partial else "ok", "frames": clip.frames,
            "seconds": round(float(clip.timestamps_ms[-1] - clip.timestamps_ms[0]) / 1000.0, 2) if clip.frames else 0,
            "person_share": round(person, 3), "bouts": len(rows), "reps": sum(totals.values()),
            "exercises": " ".join(f"{k}:{v}" for k, v in totals.items()), "error": "",
            "note": "; ".join(n for n in (partial, never_classified(states, card)) if n)}  # fmt: skip


def never_classified(states: list[str], card) -> str:
    """Why the model never ran on a replayed clip ("" when it did)."""
    if any(s in ("exercise", "unknown") for s in states):
        return ""
    if all(s == "no_person" for s in states):
        return "no person found: nothing to classify"
    policy = card.window_policy
    return (f"never classified: the model needs {policy.window / policy.fps:.2f} s of video ({policy.window} frames at "
            f"{policy.fps:g} fps, a person in {policy.min_detected} of them)")  # fmt: skip


def print_summary(rows: list[dict], out: Path, seconds: float) -> None:
    ok = [r for r in rows if r["status"] != "failed"]
    failed = [r for r in rows if r["status"] == "failed"]
    if not ok:
        Console().print(f"replayed none of {len(rows)} videos in {seconds:.1f} s")
    else:
        table = Table(title=f"replayed {len(ok)} of {len(rows)} videos in {seconds:.1f} s -> {out}", title_justify="left")
        for column in ("video", "frames", "bouts", "reps", "exercises"):
            table.add_column(column, overflow="fold")
        for r in ok[:40]:
            table.add_row(r["video"], str(r["frames"]), str(r["bouts"]), str(r["reps"]), r["exercises"])
        Console().print(table)
    if len(ok) > 40:
        Console().print(f"... and {len(ok) - 40} more in {out / 'summary.csv'}")
    for title, chosen, column in (
        ("replayed, with a note", [r for r in ok if r["note"]], "note"),
        ("videos that could not be replayed", failed, "error"),
    ):
        if not chosen:
            continue
        problems = Table(title=title, title_justify="left")
        problems.add_column("video")
        problems.add_column(column, overflow="fold")
        for r in chosen[:40]:
            problems.add_row(r["video"], r[column])
        Console().print(problems)
        if len(chosen) > 40:
            Console().print(f"... and {len(chosen) - 40} more in {out / 'summary.csv'}")


# -- main ----------------------------------------------------------------------------------------------
class OneLineParser(argparse.ArgumentParser):
    """A wrong option is one line (what is wrong, where to read more), not the usage wrapped over several."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def parse_args(argv):
    parser = OneLineParser(prog="musclevision-replay", description=__doc__.split("\n\n")[0].replace("``", ""),
                           formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("videos", nargs="*", help="video files, or folders searched for videos")
    parser.add_argument("--cache", help="read keypoints from this keypoint cache instead of landmarking videos")
    parser.add_argument(
        "--videos", dest="patterns", nargs="+", metavar="ID", help="with --cache: video ids or patterns ('PushUps/*')"
    )
    parser.add_argument("--classes", nargs="+", help="with --cache: only these classes")
    parser.add_argument("--export", default=str(default_export()), help="model card (default: %(default)s)")
    parser.add_argument("--out", default="replays", help="output folder (default: %(default)s)")
    parser.add_argument("--mode", default="auto", help="auto (count the recognised exercise, as the page opens), a class name "
                        "(count it whenever a person is visible), or label (each cached clip's own class)")  # fmt: skip
    parser.add_argument("--threshold", type=float, help="override the card's 'no exercise' threshold")
    parser.add_argument("--smooth", type=float, help="override the card's smoothing time constant (seconds)")
    parser.add_argument("--workers", type=int, help="extractor processes for videos (default: one per CPU)")
    parser.add_argument("--no-plot", action="store_true", help="skip the timeline PNGs")
    args = parser.parse_args(argv)
    if bool(args.videos) == bool(args.cache):
        parser.error("give video files/folders, or --cache <keypoint cache> (not both)")
    if (args.patterns or args.classes) and not args.cache:
        parser.error("--videos and --classes select clips of a --cache")
    if args.threshold is not None and not 0 < args.threshold < 1:
        parser.error(f"--threshold {args.threshold} must be between 0 and 1")
    if args.smooth is not None and not 0 <= args.smooth <= 10:
        parser.error(f"--smooth {args.smooth} must be between 0 and 10 seconds")
    if args.workers is not None and args.workers < 1:
        parser.error(f"--workers {args.workers} must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    options = {k: v for k, v in (("threshold", args.threshold), ("smoothingS", args.smooth)) if v is not None}
    started = time.perf_counter()
    rows: list[dict] = []
    try:
        if out.exists() and not out.is_dir():
            raise ReplayError(f"--out {out} is a file; choose a folder")
        with EngineProcess(args.export, options) as engine:
            card = engine.card
            if args.mode not in ("auto", "label") and args.mode not in card.classes:
                raise ReplayError(
                    f"--mode {args.mode!r}: use auto, label or one of the model's classes ({', '.join(card.classes)})"
                )
            if args.cache:
                loaders, total = cache_keypoints(args.cache, args.patterns, args.classes)
                clips = (load() for load in loaders)
            else:
                files = find_video_files(args.videos)
                total, clips = len(files), videos_keypoints(files, card, args.workers, out / "logs")  # lazy: not yet
            try:  # the command is right: before any work (the extractor's workers log there, every result goes there)
                check_writable(out)
            except OSError as exc:
                raise ReplayError(f"--out: {describe_write_error(exc, out)}") from None
            threshold = engine.options.get("threshold", card.window_policy.threshold)
            lines = LogLines()  # a log or a pipe: plain lines (as the extractor), no bar drawn at the end
            progress = Progress(TextColumn("[bold]replay"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[now]}"),
                                TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=console,
                                disable=lines.enabled)  # fmt: skip
            with progress:
                task = progress.add_task("replay", total=total, now="")
                for clip in clips:
                    rows.append(replay_one(engine, clip, args, out, threshold))
                    progress.update(task, advance=1, now=rows[-1]["video"])
                    if lines.due(len(rows), total):
                        line = f"replay: {len(rows)}/{total} videos, {lines.at - started:.0f} s, last {rows[-1]['video']}"
                        console.print(escape(line), highlight=False, soft_wrap=True)
    except ReplayError as exc:
        console.print(f"[red]musclevision-replay: error: {escape(str(exc))}[/red]", soft_wrap=True)  # one line
        return 2
    except KeyboardInterrupt:
        console.print(f"[yellow]interrupted: {len(rows)} videos are done in {escape(str(out))}[/yellow]", soft_wrap=True)
        return 130
    except OSError as exc:
        if not is_full_or_read_only(exc):
            raise
        # the disk filled up (or went read-only) mid-batch: the videos done so far keep their files
        console.print(f"[red]musclevision-replay: error: {escape(describe_write_error(exc))} ({len(rows)} videos were "
                      "done before)[/red]", soft_wrap=True)  # fmt: skip
        return 2
    finally:
        rows.sort(key=lambda r: r["video"])  # videos finish in the extractor pool's order (largest first): list by id
        if rows:
            try:
                with open(out / "summary.csv", "w", newline="", encoding="utf-8") as f:
                    writer = csv.DictWriter(f, fieldnames=SUMMARY_COLUMNS)
                    writer.writeheader()
                    writer.writerows(rows)
            except OSError as exc:
                if not is_full_or_read_only(exc):
                    raise
                console.print(f"[red]{escape(describe_write_error(exc, out / 'summary.csv'))}[/red]", soft_wrap=True)
    print_summary(rows, out, time.perf_counter() - started)
    return 1 if any(r["status"] != "ok" for r in rows) else 0


def replay_one(engine: EngineProcess, clip: Keypoints | Failure, args, out: Path, threshold: float) -> dict:
    failed = {"status": "failed", "frames": 0, "seconds": 0, "person_share": 0, "bouts": 0, "reps": 0, "exercises": "",
              "note": ""}  # fmt: skip
    if isinstance(clip, Failure):
        return {"video": clip.video_id, **failed, "error": clip.error}
    mode = args.mode
    if mode == "label":
        if clip.label not in engine.card.classes:
            return {
                "video": clip.video_id,
                **failed,
                "error": f"--mode label: its class {clip.label!r} is not one of the model's",
            }
        mode = clip.label
    result = engine.replay(clip, mode)
    if "error" in result:
        return {"video": clip.video_id, **failed, "error": f"engine: {result['error']}"}
    return write_outputs(out, clip, result, engine.card, threshold, plot=not args.no_plot)


if __name__ == "__main__":
    sys.exit(main())
