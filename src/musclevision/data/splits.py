"""Train / validation / test splits that keep every group (one source recording) on one side.

UCF101 cuts each long recording into several clips (same person, same place): a random clip
split puts near-duplicates on both sides and inflates accuracy. That is what the reference
paper did; it is available here only under the loudly named protocol ``leaky_random_clips``.

Protocols:
  group_kfold          no test set; groups are dealt into ``folds`` folds, fold ``fold`` validates.
  official             UCF101 split ``official_split`` (1: test groups 1-7, 2: 8-14, 3: 15-21) is the
                       test set (its groups must be present); validation folds inside the rest.
  leaky_random_clips   the paper's random clip split (val_fraction of clips per class). Not honest.
  none                 train on everything, validate on nothing: the deployed model, whose expected
                       accuracy is the cross-validated estimate of the same recipe.
"""

from __future__ import annotations

import inspect
import logging
import re
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)
PROTOCOLS = ("group_kfold", "official", "leaky_random_clips", "none")
OFFICIAL_TEST_GROUPS = {1: range(1, 8), 2: range(8, 15), 3: range(15, 22)}


@dataclass
class Split:
    train: list[int]
    val: list[int]
    test: list[int]
    description: str


# What decides which clips land on which side, per protocol (a seed matters only to the random clip split).
DECIDING_KEYS = {
    "group_kfold": ("folds", "fold"), "official": ("official_split", "folds", "fold"),
    "leaky_random_clips": ("val_fraction", "seed"), "none": (),
}  # fmt: skip


def with_defaults(split: dict | None) -> dict:
    """A ``data.split`` (config or record) with every setting it leaves out at ``split_clips``' default."""
    defaults = {k: p.default for k, p in inspect.signature(split_clips).parameters.items() if p.default is not p.empty}
    return {**defaults, **(split or {})}


def split_key(split: dict | None) -> dict:
    """The settings of a recorded ``data.split`` that decide its sides: two checkpoints with equal keys held out the
    same clips (e.g. two seeds of one group fold), whatever else their configs say."""
    split = with_defaults(split)
    protocol = split["protocol"]
    return {"protocol": protocol, **{k: split.get(k) for k in DECIDING_KEYS.get(protocol, tuple(sorted(split)))}}


def group_number(group: str) -> int | None:
    match = re.fullmatch(r"g(\d+)", group)
    return int(match.group(1)) if match else None


def _deal_groups(groups: list[str], folds: int, fold: int) -> set[str]:
    """Groups of validation fold ``fold``: sorted groups dealt round-robin, so folds are balanced and stable."""
    return set(sorted(groups)[fold::folds])


def check_split_options(split: dict) -> None:
    """Refuse split settings that are wrong whatever the data (training checks them before extracting anything);
    ``split_clips`` checks them again, and what depends on the data (enough groups for the folds)."""
    split = with_defaults(split)
    protocol, folds, fold = split["protocol"], split["folds"], split["fold"]
    official_split, val_fraction = split["official_split"], split["val_fraction"]
    if protocol not in PROTOCOLS:
        raise ValueError(f"data.split.protocol={protocol!r}: use one of {', '.join(PROTOCOLS)}")
    if protocol == "leaky_random_clips" and not (isinstance(val_fraction, (int, float)) and 0.0 < val_fraction < 1.0):
        raise ValueError(f"data.split.val_fraction={val_fraction!r} must be between 0 and 1")
    if protocol == "official" and official_split not in OFFICIAL_TEST_GROUPS:
        raise ValueError(f"data.split.official_split={official_split!r}: use 1, 2 or 3 with protocol=official")
    if protocol in ("group_kfold", "official"):
        if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
            raise ValueError(f"data.split.folds={folds!r} must be a whole number of at least 2")
        if isinstance(fold, bool) or not isinstance(fold, int) or not 0 <= fold < folds:
            raise ValueError(f"data.split.fold={fold!r} must be in 0..{folds - 1}")


def split_clips(labels: list[str], groups: list[str], protocol: str = "group_kfold", folds: int = 6, fold: int = 0,
                official_split: int | None = None, val_fraction: float = 0.2, seed: int = 0) -> Split:  # fmt: skip
    """Indices of the clips on each side. ``labels``/``groups`` are per clip, in the same order."""
    check_split_options(dict(protocol=protocol, folds=folds, fold=fold, official_split=official_split, val_fraction=val_fraction))
    indices = np.arange(len(labels))
    if protocol == "none":
        return Split(indices.tolist(), [], [], "none: every clip in one set, no group held out")
    if protocol == "leaky_random_clips":
        log.warning(
            "LEAKY SPLIT: clips of one UCF101 group (same person and scene) land in train AND validation, as in "
            "the reference paper. Validation accuracy is inflated; use it only to reproduce the paper's number."
        )
        rng = np.random.default_rng(seed)
        val = []
        for label in sorted(set(labels)):
            members = rng.permutation(indices[np.asarray(labels) == label])
            val += members[: max(1, round(val_fraction * len(members)))].tolist()
        train = sorted(set(indices.tolist()) - set(val))
        return Split(train, sorted(val), [], f"leaky_random_clips val_fraction={val_fraction} seed={seed}")

    test_groups: set[str] = set()
    if protocol == "official":
        wanted = set(OFFICIAL_TEST_GROUPS[official_split])
        test_groups = {g for g in set(groups) if group_number(g) in wanted}
        present = {group_number(g) for g in test_groups}
        if present != wanted:
            missing = ", ".join(f"g{n:02d}" for n in sorted(wanted - present))
            raise ValueError(
                f"official split {official_split} tests on groups {min(wanted):02d}-{max(wanted):02d} but {missing} "
                "are not in this data; use protocol=group_kfold or another official_split"
            )
    rest = sorted(set(groups) - test_groups)
    if folds > len(rest):
        raise ValueError(f"data.split.folds={folds!r} must be between 2 and the number of groups ({len(rest)})")
    val_groups = _deal_groups(rest, folds, fold)
    side = {g: "test" if g in test_groups else "val" if g in val_groups else "train" for g in set(groups)}
    members = {name: [int(i) for i in indices if side[groups[i]] == name] for name in ("train", "val", "test")}
    description = f"{protocol} fold {fold}/{folds}: val groups {','.join(sorted(val_groups))}"
    if test_groups:
        description += f"; test groups {','.join(sorted(test_groups))}"
    return Split(members["train"], members["val"], members["test"], description)
