"""The scores of what the page shows (musclevision.replay.metrics), calibration (musclevision.calibrate), reference
counts and synthetic workouts, on inputs whose right answers are known."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from musclevision.calibrate import choose_threshold, ensemble_folds, expected_calibration_error, fit_temperature, softmax
from musclevision.data.synthetic import synthesize_clip
from musclevision.replay.engine import Keypoints
from musclevision.replay.metrics import Bout, displayed_accuracy, match_bouts, recognition_delays, rep_scores
from musclevision.replay.references import default_annotations, load_references
from musclevision.replay.workouts import build_workout, random_workouts


def test_rep_scores():
    s = rep_scores([3, 2, 5, 0], [3, 3, 3, 0])
    assert s["clips"] == 4
    assert s["nmae"] == pytest.approx((0 + 1 / 3 + 2 / 3) / 3)  # the clip with 0 true reps has no normalized error
    assert s["off_by_one"] == 0.75 and s["exact"] == 0.5 and s["mean_error"] == pytest.approx(0.25)


def test_bout_matching():
    true = [Bout("Lunges", 0, 10), Bout("PushUps", 12, 20), Bout("Lunges", 25, 30)]
    logged = [Bout("Lunges", 0.4, 10.8), Bout("PushUps", 12.2, 22.0), Bout("Lunges", 25.5, 29.5), Bout("Lunges", 31, 33)]
    m = match_bouts(logged, true)
    assert m["tp"] == 2 and m["pairs"] == [(0, 0), (2, 2)]  # the push-up bout ends 2 s late
    assert m["precision"] == pytest.approx(0.5) and m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert match_bouts([], [])["f1"] == 1.0 and match_bouts([], true)["f1"] == 0.0


def test_displayed_accuracy_and_delays():
    t = np.arange(0, 10, 0.5)
    truth = ["A" if x < 5 else "B" for x in t]
    shown = ["A" if x < 6 else "B" for x in t]  # switches 1 s late
    acc = displayed_accuracy(t, shown, truth, [0.0, 5.0], settle_s=1.5)
    # scored: t in [1.5, 5) and [6.5, 10): all right
    assert acc == {"frames": 7 + 7, "accuracy": 1.0}
    assert displayed_accuracy(t, shown, truth, [0.0, 5.0], settle_s=0.5)["accuracy"] < 1.0
    assert recognition_delays(t, shown, [("A", 0, 5), ("B", 5, 10), ("C", 0, 10)]) == [
        0.0,
        1.0,
        pytest.approx(np.nan, nan_ok=True),
    ]


def test_temperature_recovers_overconfidence_and_lowers_ece():
    rng = np.random.default_rng(0)
    n, k = 20000, 5
    honest = rng.normal(0, 1.5, (n, k))
    cumulative = softmax(honest).cumsum(1)
    labels = (rng.random((n, 1)) > cumulative).sum(1)  # drawn from softmax(honest): calibrated by construction ...
    sharp = honest * 3.0  # ... made three times over-confident
    t = fit_temperature(sharp, labels)
    assert t == pytest.approx(3.0, rel=0.1)
    before, after = expected_calibration_error(softmax(sharp), labels), expected_calibration_error(softmax(sharp, t), labels)
    assert before > 0.1 and after < 0.02
    assert fit_temperature(honest, labels) == pytest.approx(1.0, rel=0.1)


def _fold(fold: int, seed: int, logits, labels, cache="c"):
    split = {"protocol": "group_kfold", "folds": 6, "fold": fold, "seed": seed}
    return {"checkpoint": f"s{seed}/{fold}", "split": split, "logits": logits, "labels": labels,
            "source": {"cache_dir": cache}}  # fmt: skip


def test_an_ensembles_held_out_logits_give_the_mean_of_its_members_probabilities():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, 40)
    a, b, c = (rng.normal(0, 3, (40, 5)) for _ in range(3))
    merged = ensemble_folds([_fold(0, 42, a, labels), _fold(1, 42, c, labels), _fold(0, 7, b, labels), _fold(1, 7, a, labels)])
    assert [m["checkpoint"] for m in merged] == [["s42/0", "s7/0"], ["s42/1", "s7/1"]]
    assert np.allclose(softmax(merged[0]["logits"]), (softmax(a) + softmax(b)) / 2, atol=1e-12)
    assert np.allclose(softmax(merged[1]["logits"]), (softmax(c) + softmax(a)) / 2, atol=1e-12)
    with pytest.raises(ValueError, match="same number of members in every fold"):
        ensemble_folds([_fold(0, 42, a, labels), _fold(0, 7, b, labels), _fold(1, 42, c, labels)])
    with pytest.raises(ValueError, match=r"no two checkpoints validate the same fold \(group_kfold fold 0, group_kfold fold 1"):
        ensemble_folds([_fold(0, 42, a, labels), _fold(1, 42, b, labels)])
    with pytest.raises(ValueError, match="not scored on the same held-out windows"):
        ensemble_folds([_fold(0, 42, a, labels), _fold(0, 7, b, labels[::-1].copy())])
    with pytest.raises(ValueError, match="differs in cache_dir"):
        ensemble_folds([_fold(0, 42, a, labels), _fold(0, 7, b, labels, cache="other")])


def test_an_ensemble_export_takes_its_folds_temperature_and_refuses_a_mismatched_calibration():
    from types import SimpleNamespace

    from musclevision.export.exporter import calibration_for

    def model(fold, seed):
        split = {"protocol": "group_kfold", "folds": 6, "fold": fold, "seed": seed} if fold is not None else {"protocol": "none"}
        return SimpleNamespace(run_config={"data": {"split": split}})

    calibration = {"format": "musclevision-calibration/1", "temperature": 1.4, "fold_temperatures": {"0": 1.3, "1": 1.6},
                   "split": {"protocol": "group_kfold", "folds": 6, "seed": 42}, "windows": 100, "ece_before": 0.02,
                   "ece_after": 0.01, "threshold": 0.44, "checkpoints": [["a", "b"], ["c", "d"]],
                   "ensemble_members": 2}  # fmt: skip
    block, threshold = calibration_for([model(1, 42), model(1, 7)], calibration, "cal.json")  # seeds of fold 1
    assert block.temperature == 1.6 and "fold 1's temperature" in block.measured_on and threshold == 0.44
    block, _ = calibration_for([model(None, 42), model(None, 7)], calibration, "cal.json")  # trained on every group
    assert block.temperature == 1.4 and "ensemble of 2" in block.measured_on
    with pytest.raises(ValueError, match="fitted for ensembles of 2 and this export has 1"):
        calibration_for([model(1, 42)], calibration, "cal.json")
    with pytest.raises(ValueError, match="held out different groups"):
        calibration_for([model(0, 42), model(1, 42)], calibration, "cal.json")
    single = {**calibration, "ensemble_members": None, "checkpoints": ["a", "c"]}
    with pytest.raises(ValueError, match="fitted for single models"):
        calibration_for([model(None, 42), model(None, 7)], single, "cal.json")
    assert calibration_for([model(0, 42)], single, "cal.json")[0].temperature == 1.3


def test_ece_of_perfectly_calibrated_bins_is_zero():
    probabilities = np.array([[0.75, 0.25]] * 4)
    assert expected_calibration_error(probabilities, np.array([0, 0, 0, 1])) == pytest.approx(0.0)
    assert expected_calibration_error(probabilities, np.array([0, 0, 0, 0])) == pytest.approx(0.25)


def test_threshold_shows_labels_more_likely_right_than_wrong():
    rng = np.random.default_rng(1)
    n = 20000
    top = rng.uniform(0.3, 1.0, n)
    right = rng.random(n) < top  # calibrated: class 0 is right with probability = its confidence
    labels = np.where(right, 0, rng.integers(1, 5, n))

    def windows(p):  # class 0 gets p, the other four share the rest
        return np.concatenate([p[:, None], np.repeat(((1 - p) / 4)[:, None], 4, 1)], 1)

    assert choose_threshold(windows(top), labels) == pytest.approx(0.5, abs=0.04)
    # the same windows shown as surer than they are: the threshold moves up with them
    assert choose_threshold(windows(np.sqrt(top)), labels) == pytest.approx(np.sqrt(0.5), abs=0.04)


def test_reference_counts(tmp_path):
    ucfrep = tmp_path / "ucfrep.csv"
    ucfrep.write_text("video,class,group,reps,boundaries\nA/v_A_g08_c01,A,08,3,1 20 40 60\nA/v_A_g09_c01,A,09,0,0\n")
    ours = tmp_path / "ours.csv"
    ours.write_text("video,class,group,reps,confidence,how\nA/v_A_g09_c01,A,09,1,high,one slow rep\nB/v_B_g08_c01,B,08,2,low,x\n")
    refs = load_references(ucfrep, ours)
    assert {v: (r.reps, r.source, r.confidence) for v, r in refs.items()} == {
        "A/v_A_g08_c01": (3, "ucfrep", "high"), "A/v_A_g09_c01": (1, "ucfrep-reviewed", "high"),
        "B/v_B_g08_c01": (2, "annotated", "low"),
    }  # fmt: skip
    assert load_references(ucfrep, ours, reviewed=False)["A/v_A_g09_c01"].reps == 0


def test_our_annotations_are_complete_and_consistent():
    rows = list(csv.DictReader(open(default_annotations())))
    assert rows and all(r["how"] and r["confidence"] in ("high", "low") and int(r["reps"]) >= 0 for r in rows)
    per_class = {}
    for r in rows:
        assert r["video"].startswith(f"{r['class']}/v_{r['class']}_g{r['group']}_")
        per_class.setdefault(r["class"], set()).add(r["group"])
    # one clip per group, groups 08-25 only (01-07 are withheld); UCFRep's classes only where we reviewed a clip
    assert all("UCFRep lists" in r["how"] for r in rows if r["class"] in ("BenchPress", "BodyWeightSquats"))
    for c in ("Lunges", "PushUps", "WallPushups"):
        assert per_class[c] <= {f"{g:02d}" for g in range(8, 26)} and len(per_class[c]) >= 17, c
    assert len({r["video"] for r in rows}) == len(rows)


def test_synthetic_clips_know_their_reps():
    rng = np.random.default_rng(3)
    clip = synthesize_clip("BodyWeightSquats", rng, seconds=8.0)
    assert clip.rep_ends is not None and len(clip.rep_ends) >= 2
    assert np.all(np.diff(clip.rep_ends) > 0.8 * clip.fps)  # a squat takes at least ~1 s


def test_workout_timeline():
    def clip(label, frames, vid):
        image = np.zeros((frames, 33, 4), np.float32)
        return Keypoints(vid, image, np.zeros((frames, 33, 3), np.float32), np.arange(frames) * 40.0, label=label)

    workout, segments = build_workout("w", [clip("A", 50, "a"), clip("B", 25, "b")], [1.0, 2.0, 0.4], reps={"a": 4})
    assert [(s.exercise, s.start_s, s.end_s, s.reps) for s in segments] == [
        (None, 0.0, 1.0, None), ("A", 1.0, 3.0, 4), (None, 3.0, 5.0, None), ("B", 5.0, 6.0, None), (None, 6.0, 6.4, None),
    ]  # fmt: skip
    assert workout.frames == 25 + 50 + 50 + 25 + 10 and np.all(np.diff(workout.timestamps_ms) > 0)
    assert np.isnan(workout.image[:25]).all() and not np.isnan(workout.image[25:75]).any()
    many = random_workouts([clip("A", 10, "a"), clip("B", 10, "b"), clip("C", 10, "c")], 5, np.random.default_rng(0))
    for _, segs in many:
        labels = [s.exercise for s in segs if s.exercise]
        assert 3 <= len(labels) <= 5 and all(x != y for x, y in zip(labels, labels[1:]))


def test_calibrate_warns_when_its_temperature_makes_held_out_probabilities_less_honest(tmp_path, monkeypatch, capsys):
    import musclevision.calibrate as calibrate

    result = {"temperature": 1.306, "ece_before": 0.031, "ece_after": 0.041, "cross_fitted": True, "windows": 90,
              "threshold": 0.3, "shown_share": 1.0, "shown_accuracy": 0.85, "errors_caught": 0.0}  # fmt: skip
    monkeypatch.setattr(calibrate, "fold_checkpoints", lambda runs: [tmp_path / "a.ckpt", tmp_path / "b.ckpt"])
    monkeypatch.setattr(calibrate, "calibrate", lambda *args, **kwargs: dict(result))
    assert calibrate.main([str(tmp_path), "--out", str(tmp_path / "calibration.json")]) == 0
    err = capsys.readouterr().err
    assert "warning: on held-out windows this temperature makes the probabilities less honest (ECE 0.031 -> 0.041)" in err
    result["ece_after"] = 0.02  # better: no warning
    assert calibrate.main([str(tmp_path), "--out", str(tmp_path / "calibration.json")]) == 0
    assert "warning" not in capsys.readouterr().err
