"""``musclevision-calibrate``: fit the temperature that makes a recipe's probabilities honest, on held-out groups.

    musclevision-calibrate logs/crossval/best                 # the six fold runs of one recipe
    musclevision-calibrate run0/checkpoints/last.ckpt run1/... --out calibration.json
    musclevision-calibrate --ensemble logs/crossval/a logs/crossval/b   # each fold's models as one ensemble

With ``--ensemble`` the checkpoints that validate the same fold are that fold's ensemble (several seeds or
architectures): their held-out windows are scored by the mean of the members' probabilities, as the graph
``musclevision-export ckpt_paths=[...]`` builds, and the temperature is fitted to that mean (an ensemble is less
over-confident than its members, so a member's temperature would not fit it).

Each fold checkpoint scores the windows of its own validation groups (the windows evaluation scores: the
card's window and min_detected), giving held-out logits for every group. The temperature T divides the
logits before the softmax; it is fitted by likelihood on those held-out windows. Reported ECE "after" is
cross-fitted: fold k's windows are scaled by the temperature fitted on the other folds, so no window is
scored with a temperature it helped choose. The "no exercise" threshold is chosen on the calibrated
probabilities (see ``choose_threshold``). ``musclevision-export calibration=<file>`` builds T into the
exported graph (each fold's own cross-fitted T for a fold checkpoint, the pooled T for a final model) and
writes the card's ``calibration`` block and ``window_policy.threshold``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

FORMAT = "musclevision-calibration/1"
# The threshold: show a label when showing it is right more often than wrong. With calibrated probabilities the
# count of right labels shown minus wrong labels shown is largest near 0.5; it is chosen on the held-out windows.
THRESHOLD_RANGE = (0.3, 0.9)


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """Top-label ECE: sum over equal-width confidence bins of |accuracy - mean confidence| x share of samples."""
    probabilities, labels = np.asarray(probabilities, dtype=float), np.asarray(labels)
    if len(labels) == 0:
        return float("nan")
    confidence, predicted = probabilities.max(1), probabilities.argmax(1)
    correct = predicted == labels
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    ece = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            ece += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(ece)


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimizing the negative log-likelihood of ``labels`` (golden-section search on log T)."""
    logits, labels = np.asarray(logits, dtype=np.float64), np.asarray(labels)

    def nll(log_t: float) -> float:
        z = logits / np.exp(log_t)
        z = z - z.max(1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(1)) - z[np.arange(len(labels)), labels]))

    lo, hi = np.log(0.05), np.log(20.0)
    ratio = (np.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(a), nll(b)
    for _ in range(80):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(b)
    return float(np.exp((lo + hi) / 2))


def fold_checkpoints(paths: list[str]) -> list[Path]:
    """Checkpoints named directly, or ``*/checkpoints/last.ckpt`` of the runs in a sweep folder."""
    found = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            runs = sorted(path.glob("*/checkpoints/last.ckpt"), key=lambda p: p.parts[-3])
            if not runs:
                raise FileNotFoundError(f"{path} holds no <run>/checkpoints/last.ckpt (is it a multirun folder?)")
            found += runs
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"{path} does not exist")
    return found


def held_out_data(ckpt: Path, cache_dir: str | None = None) -> tuple[object, dict, dict, dict, str]:
    """The checkpoint's model, the data config of its validation groups (the windows evaluation scores: the card's
    window and min_detected), its split, the keypoints it reads (data.source) and a key of what decides those
    windows: checkpoints with equal keys (e.g. seeds of one fold) score the same windows."""
    from musclevision.data.splits import split_key
    from musclevision.models.module import load_checkpoint

    model = load_checkpoint(ckpt).eval()
    data = dict(model.run_config.get("data") or {})
    split = data.get("split") or {}
    if not data or split.get("protocol") in (None, "none"):
        raise ValueError(f"{ckpt} has no held-out groups (split {split.get('protocol')}): calibrate on fold checkpoints")
    data.update(classes=model.classes, window=int(model.hparams.window), eval_stride=1, shuffle=False)
    if cache_dir:
        data["source"] = {**data["source"], "cache_dir": cache_dir}
    source = {k: v for k, v in (data.get("source") or {}).items() if k != "workers"}  # what keypoints, not how fast
    train_side = ("split", "train_extra", "train_extra_ratio", "augment", "balance", "batch_size", "train_stride",
                  "num_workers")  # fmt: skip
    key = json.dumps({**{k: v for k, v in data.items() if k not in train_side}, "source": source,
                      "split": split_key(split)}, sort_keys=True, default=str)  # fmt: skip
    return model, data, split, source, key


def held_out_logits(checkpoints: list[Path], cache_dir: str | None = None, log=print) -> list[dict]:
    """Per checkpoint: logits [N, K] and labels [N] of every window of its validation groups, its split and
    source. The checkpoints that score the same windows (an ensemble's members) are run one after another on one
    load of their keypoints; one fold's keypoints are held at a time, its windows built batch by batch."""
    import torch
    from hydra.utils import instantiate

    prepared = [held_out_data(ckpt, cache_dir) for ckpt in checkpoints]
    results: list[dict | None] = [None] * len(checkpoints)
    loaded_key, datamodule = None, None
    for i in sorted(range(len(checkpoints)), key=lambda i: prepared[i][4]):
        model, data, split, source, key = prepared[i]
        if key != loaded_key:
            datamodule = None  # the previous fold's keypoints go before this fold's are loaded
            datamodule = instantiate(data)
            datamodule.setup()
            loaded_key = key
        logits, labels = [], []
        with torch.no_grad():
            for batch in datamodule.eval_loaders("val")[0]:
                logits.append(model(batch["landmarks"], batch["world"]).numpy())
                labels.append(batch["label"].numpy())
        results[i] = {"checkpoint": str(checkpoints[i]), "split": split, "logits": np.concatenate(logits),
                      "labels": np.concatenate(labels), "source": source}  # fmt: skip
        log(f"{checkpoints[i]}: {len(results[i]['labels'])} held-out windows (fold {split.get('fold')})")
    return results


def choose_threshold(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The threshold (0.01 steps in THRESHOLD_RANGE) at which the windows shown (top >= threshold) hold the most
    right labels minus wrong ones: a label is shown when it is more likely right than wrong (equal costs for a
    wrong label shown and a right one hidden)."""
    top, right = probabilities.max(1), probabilities.argmax(1) == labels
    grid = np.round(np.arange(THRESHOLD_RANGE[0], THRESHOLD_RANGE[1] + 1e-9, 0.01), 2)
    gain = [int(right[top >= t].sum()) - int((~right)[top >= t].sum()) for t in grid]
    return float(grid[int(np.argmax(gain))])


def ensemble_folds(folds: list[dict]) -> list[dict]:
    """The members of each fold as one model: logits = log of the mean of their probabilities (Ensemble.forward)."""
    from musclevision.data.splits import split_key

    by_fold: dict[tuple, list[dict]] = {}  # grouped by what decides a split's sides (seeds of one fold together)
    for f in folds:
        by_fold.setdefault(tuple(split_key(f["split"]).items()), []).append(f)
    sizes = {len(members) for members in by_fold.values()}
    if len(sizes) != 1:
        counts = ", ".join(f"fold {m[0]['split'].get('fold')}: {len(m)}" for m in by_fold.values())
        raise ValueError(f"--ensemble needs the same number of members in every fold ({counts})")
    if sizes == {1}:
        found = ", ".join(f"{m[0]['split'].get('protocol')} fold {m[0]['split'].get('fold')}" for m in by_fold.values())
        raise ValueError(f"--ensemble: no two checkpoints validate the same fold ({found}), so there is no ensemble; "
                         "give each fold's members, or leave --ensemble out")  # fmt: skip
    merged = []
    for members in by_fold.values():
        first = members[0]
        for other in members[1:]:
            differ = sorted(k for k in {*other["source"], *first["source"]} if other["source"].get(k) != first["source"].get(k))
            if differ:
                raise ValueError(f"{other['checkpoint']} and {first['checkpoint']} learned from different keypoints "
                                 f"(their data.source differs in {', '.join(differ)}): an ensemble's members must read "
                                 "the same keypoints")  # fmt: skip
            if not np.array_equal(other["labels"], first["labels"]):
                raise ValueError(f"{other['checkpoint']} and {first['checkpoint']} were not scored on the same held-out "
                                 "windows (other clips or window settings): they cannot form one fold's ensemble")  # fmt: skip
        mean = np.mean([softmax(m["logits"]) for m in members], axis=0)
        merged.append({"checkpoint": [m["checkpoint"] for m in members], "split": first["split"],
                       "logits": np.log(np.maximum(mean, 1e-30)), "labels": first["labels"]})  # fmt: skip
    return merged


def calibrate(checkpoints: list[Path], cache_dir: str | None = None, log=print, ensemble: bool = False) -> dict:
    folds = held_out_logits(checkpoints, cache_dir, log)
    if ensemble:
        folds = ensemble_folds(folds)
    keys = [(f["split"].get("protocol"), f["split"].get("folds"), f["split"].get("fold")) for f in folds]
    if len(set(keys)) != len(keys):
        raise ValueError("two checkpoints validate the same fold: give one run per fold, or --ensemble to calibrate "
                         "each fold's checkpoints as one ensemble")  # fmt: skip
    all_logits = np.concatenate([f["logits"] for f in folds])
    all_labels = np.concatenate([f["labels"] for f in folds])
    pooled = fit_temperature(all_logits, all_labels)
    calibrated = []
    per_fold = {}
    for k, f in enumerate(folds):
        others = [g for j, g in enumerate(folds) if j != k]
        t = (fit_temperature(np.concatenate([g["logits"] for g in others]), np.concatenate([g["labels"] for g in others]))
             if others else pooled)  # fmt: skip
        if others:  # one fold alone has no other folds to fit its temperature on
            per_fold[str(f["split"].get("fold"))] = round(t, 4)
        calibrated.append(softmax(f["logits"], t))
    calibrated = np.concatenate(calibrated)
    raw = softmax(all_logits)
    threshold = choose_threshold(calibrated, all_labels)
    top = calibrated.max(1)
    right = calibrated.argmax(1) == all_labels
    return {
        "format": FORMAT,
        "temperature": round(pooled, 4),
        "fold_temperatures": per_fold,  # fold k: fitted on the other folds (for exporting fold k's model)
        # False with one fold: the temperature and the threshold were fitted on the windows they are measured on
        "cross_fitted": len(folds) > 1,
        "split": {k: v for k, v in folds[0]["split"].items() if k != "fold"},
        "windows": int(len(all_labels)),
        "accuracy": float(right.mean()),
        "ece_before": expected_calibration_error(raw, all_labels),
        "ece_after": expected_calibration_error(calibrated, all_labels),
        "share_above_0.9_before": float((raw.max(1) >= 0.9).mean()),
        "share_above_0.9_after": float((top >= 0.9).mean()),
        "threshold": threshold,
        "threshold_rule": "most right minus wrong labels shown (calibrated, held out)"
        + ("" if len(folds) > 1 else "; one fold: in-sample"),
        "shown_share": float((top >= threshold).mean()),
        "shown_accuracy": float(right[top >= threshold].mean()),
        "errors_caught": float(((top < threshold) & ~right).sum() / max(1, (~right).sum())),
        "checkpoints": [f["checkpoint"] for f in folds],  # per fold: a path, or the members' paths (--ensemble)
        "ensemble_members": len(folds[0]["checkpoint"]) if ensemble else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="musclevision-calibrate", description=__doc__.split("\n\n")[0].replace("``", ""))
    parser.add_argument("runs", nargs="+", help="fold checkpoints, or multirun folders holding <run>/checkpoints/last.ckpt")
    parser.add_argument("--cache", help="keypoint cache to score (default: the one each checkpoint was trained on)")
    parser.add_argument("--ensemble", action="store_true",
                        help="checkpoints that validate the same fold are that fold's ensemble (the mean of their "
                             "probabilities): calibrate the ensemble")  # fmt: skip
    parser.add_argument("--out", default="calibration.json", help="where to write the result (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        result = calibrate(
            fold_checkpoints(args.runs), args.cache, log=lambda m: print(m, file=sys.stderr), ensemble=args.ensemble
        )
    except (FileNotFoundError, ValueError) as exc:
        print(f"musclevision-calibrate: error: {exc}", file=sys.stderr)
        return 2
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    what = f"ensembles of {result['ensemble_members']}, " if args.ensemble else ""
    how = ("held out, cross-fitted" if result["cross_fitted"] else "in-sample: one fold, the temperature and threshold "
           "fitted on these windows; give every fold of a cross-validation for a held-out measure")  # fmt: skip
    print(f"{what}temperature {result['temperature']:.3f}: ECE {result['ece_before']:.3f} -> {result['ece_after']:.3f} "
          f"({how}) on {result['windows']} windows; threshold {result['threshold']:.2f} shows "
          f"{result['shown_share']:.1%} of windows, {result['shown_accuracy']:.1%} of them right, catches "
          f"{result['errors_caught']:.1%} of the errors\n-> {args.out}")  # fmt: skip
    if result["cross_fitted"] and result["ece_after"] > result["ece_before"]:
        print(f"musclevision-calibrate: warning: on held-out windows this temperature makes the probabilities less "
              f"honest (ECE {result['ece_before']:.3f} -> {result['ece_after']:.3f}): the folds disagree (too few "
              "windows or epochs?); export without calibration= rather than with it", file=sys.stderr)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
