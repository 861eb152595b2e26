"""Extraction as a person at a terminal sees it: a progress bar fed by :func:`extract_videos`' callbacks,
then a summary table. Used by ``musclevision-extract`` and by the data stage when it extracts on first use."""

from __future__ import annotations

import time

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from musclevision.extract.runner import ExtractSummary, extract_videos

console = Console(stderr=True)
LOG_EVERY_S = 30.0  # output that is not a terminal (a SLURM log, a pipe): a plain line when a video is done, at most this often


class LogLines:
    """Plain progress lines where stderr is not a terminal (a SLURM log, a pipe: rich draws no bar there until the
    end): ``due(done, total)`` is true when a unit is done and LOG_EVERY_S have passed since the last line, or at the
    last unit."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled and not console.is_terminal
        self.at = time.perf_counter()

    def due(self, done: int, total: float) -> bool:
        now = time.perf_counter()
        if self.enabled and (now - self.at >= LOG_EVERY_S or done >= total):
            self.at = now
            return True
        return False


class ExtractProgress:
    """A rich bar with videos/s and frames/s, fed by extract_videos' callbacks; where stderr is not a terminal
    (rich then draws nothing until the end), one line at the start, one when a video is done and LOG_EVERY_S have
    passed since the last, and one at the last video."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.lines = LogLines(enabled)
        self.bar = Progress(
            TextColumn("[bold]extract"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rates]}"),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[others]}"),
            console=console, disable=not enabled or self.lines.enabled,
        )  # fmt: skip
        self.task = None
        self.frames = 0
        self.held: dict[str, str] = {}  # video id -> owner, for videos another extractor is working on

    def start(self, todo) -> None:
        if not todo:
            return  # nothing to extract: no empty 0/0 bar
        self.started = time.perf_counter()
        self.task = self.bar.add_task("extract", total=len(todo), rates="", others="")
        self.bar.start()
        self.lines.at = self.started
        if self.lines.enabled:
            console.print(f"extract: {len(todo)} videos to landmark", highlight=False, soft_wrap=True)

    @property
    def finished(self) -> int:
        """Videos this run finished (saved in the cache)."""
        return int(self.bar.tasks[0].completed) if self.task is not None else 0

    def advance(self, record) -> None:
        self.frames += record.frames_decoded
        done = self.bar.tasks[0].completed + 1
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        rates = f"{done / elapsed:.2f} videos/s  {self.frames / elapsed:.0f} frames/s"
        self.bar.update(self.task, advance=1, rates=rates)
        total = self.bar.tasks[0].total
        if self.lines.due(done, total):
            eta = f", eta {_clock((total - done) * elapsed / done)}" if done < total else ""
            line = f"extract: {done}/{total:.0f} videos, {rates}, {_clock(elapsed)} elapsed{eta}"
            console.print(line, highlight=False, soft_wrap=True)  # one line in a log, however long

    def other(self, source, owner: str | None) -> None:
        """Another extractor holds ``source`` (``owner``), or finished it (None: it leaves this bar's total)."""
        if self.task is None:
            return
        if owner is None:
            self.held.pop(source.video_id, None)
            self.bar.update(self.task, total=self.bar.tasks[0].total - 1)
        else:
            self.held[source.video_id] = owner
        owners = sorted(set(self.held.values()))
        text = f"{len(self.held)} held by {', '.join(owners[:2])}{' ...' if len(owners) > 2 else ''}" if self.held else ""
        self.bar.update(self.task, others=escape(text))

    def stop(self) -> None:
        self.bar.stop()


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


def print_summary(summary: ExtractSummary, out: Console) -> None:
    failed = summary.count("failed")  # by this run; earlier failures are among those already done
    earlier = [f"{n} of them {what}" for n, what in ((len(summary.earlier_failures), "failed"),
                                                     (len(summary.earlier_partial), "only partly usable")) if n]  # fmt: skip
    grid = Table.grid(padding=(0, 2))
    # Paths, ids and error texts come from outside (a decoder quotes a path as "[/x.avi]"): escaped, never markup.
    grid.add_row("[bold]keypoint cache", escape(str(summary.cache_dir)))
    grid.add_row(
        "videos",
        f"{summary.selected} selected: [green]{summary.count('ok')} ok[/green], {summary.count('partial')} partial, "
        f"[{'red' if failed else 'green'}]{failed} failed[/], {summary.skipped} already done"
        + (f" ({', '.join(earlier)})" if earlier else "")
        + (f", {summary.by_others} done by another extractor on this cache" if summary.by_others else ""),
    )
    if summary.frames:
        grid.add_row("frames", f"{summary.frames} decoded, {summary.detected / summary.frames:.1%} with a person")
        workers = f"{summary.workers} worker{'s' if summary.workers != 1 else ''}"
        grid.add_row("time", f"{summary.seconds:.1f} s, {summary.frames / summary.seconds:.0f} frames/s with {workers}")
    out.print(grid)
    problems = [r for r in summary.done if r.status == "partial"] + summary.earlier_partial + summary.failures
    if problems:
        issues = Table(title="videos with problems (full list in manifest.jsonl)", title_justify="left")
        issues.add_column("video")
        issues.add_column("status")
        issues.add_column("reason", overflow="fold")
        for record in problems[:50]:
            issues.add_row(escape(record.video_id), record.status, escape(record.error or ""))
        out.print(issues)
        if len(problems) > 50:
            out.print(f"... and {len(problems) - 50} more")
    if summary.damaged:
        names = ", ".join(escape(v) for v in summary.damaged[:5]) + (" ..." if len(summary.damaged) > 5 else "")
        out.print(f"{len(summary.damaged)} damaged cache entries were redone: {names}")
    if summary.earlier_failures:
        n = len(summary.earlier_failures)
        out.print(f"{n} failure{' is' if n == 1 else 's are'} from earlier runs; retry {'it' if n == 1 else 'them'} with "
                  "retry_failed=true")  # fmt: skip
    if summary.earlier_partial:
        n = len(summary.earlier_partial)
        out.print(f"{n} partly usable video{' is' if n == 1 else 's are'} from earlier runs (their readable frames are "
                  "cached; replace the file to extract it again)")  # fmt: skip
    if summary.misplaced:
        n, shown = len(summary.misplaced), ", ".join(escape(p) for p in summary.misplaced[:5])
        out.print(f"[yellow]{n} video file{' is' if n == 1 else 's are'} not at <ClassName>/<video> under the video root "
                  f"and {'was' if n == 1 else 'were'} skipped: {shown}{' ...' if n > 5 else ''} (move each into its class "
                  "folder)[/yellow]")  # fmt: skip


def extract_with_progress(video_root, cache_dir, show_progress: bool = True, **options) -> ExtractSummary:
    """:func:`extract_videos` as a person at a terminal sees it: the progress bar, then the summary."""
    progress = ExtractProgress(show_progress)
    try:
        summary = extract_videos(video_root, cache_dir, on_start=progress.start, on_result=progress.advance,
                                 on_other=progress.other, **options)  # fmt: skip
    except KeyboardInterrupt as exc:
        exc.finished = progress.finished  # what the interrupted run saved, for its message
        raise
    finally:
        progress.stop()
    print_summary(summary, Console())
    return summary
