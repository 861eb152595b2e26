"""Reference repetition counts: the published UCFRep boundaries, our own frame-by-frame annotations, synthetic truth.

* ``ucfrep.csv`` (shared data, ``rep-counts/``): UCFRep's boundaries for 36 BenchPress and BodyWeightSquats clips.
* ``benchmarks/references/rep_counts.csv`` (this repository): one clip per group of Lunges, PushUps and WallPushups,
  counted by looking at the frames (how, per clip, in its ``how`` column; see that folder's README), plus our
  review of the UCFRep clips whose boundaries leave out repetitions the frames show (or list 0 while a squat is
  visible). Where both name a clip, ours wins unless ``reviewed=False`` (UCFRep as published); the clip's
  ``source`` says which.
* synthetic clips carry their true rep ends (``ClipData.rep_ends``).

The counting convention everywhere: a repetition counts from rest back to rest (the top of a squat or push-up,
standing for a lunge), so a clip that starts or ends mid-repetition does not count that partial one.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from musclevision.paths import project_root

OURS = Path("benchmarks") / "references" / "rep_counts.csv"


@dataclass(frozen=True)
class RepReference:
    video_id: str
    label: str
    group: str  # "g08"
    reps: int
    source: str  # "ucfrep" | "annotated" | "ucfrep-reviewed" | "synthetic"
    confidence: str = "high"  # "high" | "low" (our annotations of hard-to-see clips)


def shared_data() -> Path:
    return Path(os.environ.get("MUSCLEVISION_DATA", project_root().parent / "shared" / "data")) / "ucf101-exercise"


def default_ucfrep() -> Path:
    return shared_data() / "rep-counts" / "ucfrep.csv"


def default_annotations() -> Path:
    return project_root() / OURS


def _rows(path: Path, what: str) -> list[dict]:
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def load_references(ucfrep: str | Path | None = None, annotations: str | Path | None = None,
                    reviewed: bool = True) -> dict[str, RepReference]:  # fmt: skip
    """video id -> reference count, from UCFRep and our annotations (ours win where both name a clip, unless
    ``reviewed`` is False: then UCFRep's clips keep their published counts)."""
    refs: dict[str, RepReference] = {}
    for row in _rows(Path(ucfrep or default_ucfrep()), "UCFRep counts"):
        refs[row["video"]] = RepReference(row["video"], row["class"], f"g{int(row['group']):02d}", int(row["reps"]), "ucfrep")
    for row in _rows(Path(annotations or default_annotations()), "rep annotations"):
        if row["video"] in refs and not reviewed:
            continue
        source = "ucfrep-reviewed" if row["video"] in refs else "annotated"
        refs[row["video"]] = RepReference(row["video"], row["class"], f"g{int(row['group']):02d}", int(row["reps"]), source,
                                          row.get("confidence") or "high")  # fmt: skip
    return refs
