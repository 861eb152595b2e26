"""Find the videos under a root laid out like UCF101: ``<root>/<ClassName>/<video>``.

The class is the parent folder; the group (one source recording: same person, same place)
is the ``_gNN_`` token of UCF101 names, else the file stem, so clips never share a group by
accident. The video id is the path under the root without extension: unique and readable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")
_GROUP = re.compile(r"_g(\d+)_", re.IGNORECASE)


@dataclass(frozen=True)
class VideoSource:
    video_id: str
    path: Path
    label: str
    group: str
    size: int
    mtime_ns: int


def group_of(path: Path) -> str:
    match = _GROUP.search(path.name)
    return f"g{int(match.group(1)):02d}" if match else path.stem


def find_videos(root: Path, extensions=VIDEO_EXTENSIONS, classes=None) -> list[VideoSource]:
    """Every video file one folder below ``root`` (optionally only ``classes``), sorted by id."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"video_root={str(root)!r} is not a folder; point it at a folder with one sub-folder per class "
            "(e.g. video_root=../shared/data/ucf101-exercise/videos)"
        )
    wanted = {e.lower() for e in extensions}
    sources = []
    for path in sorted(root.glob("*/*")):
        if not path.is_file() or path.suffix.lower() not in wanted:
            continue
        label = path.parent.name
        if classes is not None and label not in classes:
            continue
        stat = path.stat()
        video_id = path.relative_to(root).with_suffix("").as_posix()
        sources.append(VideoSource(video_id, path.resolve(), label, group_of(path), stat.st_size, stat.st_mtime_ns))
    return sources


def misplaced_videos(root: Path, extensions=VIDEO_EXTENSIONS, limit: int = 10_000) -> list[str]:
    """Video files under ``root`` that find_videos does not take: at the top level, or in a folder inside a class
    folder (``Squat/session1/a.avi``), as paths under the root. Looks at no more than ``limit`` entries."""
    root, wanted, found = Path(root), {e.lower() for e in extensions}, []
    if not root.is_dir():
        return found
    for seen, path in enumerate(root.rglob("*")):
        if seen >= limit:
            break
        depth = len(path.relative_to(root).parts)
        if depth != 2 and path.suffix.lower() in wanted and path.is_file():
            found.append(path.relative_to(root).as_posix())
    return sorted(found)


def parse_shard(shard: str) -> tuple[int, int]:
    """``"i/n"`` -> ``(i, n)`` with 0 <= i < n; SLURM array jobs pass ``shard=$SLURM_ARRAY_TASK_ID/N``."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(shard))
    if not match or not 0 <= int(match.group(1)) < int(match.group(2)):
        raise ValueError(f"shard={shard!r} must look like i/n with 0 <= i < n, e.g. shard=0/4")
    return int(match.group(1)), int(match.group(2))


def take_shard(sources: list[VideoSource], index: int, count: int) -> list[VideoSource]:
    # Interleaved rather than contiguous so every shard gets a mix of classes and lengths.
    return sources[index::count]
