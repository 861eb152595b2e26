"""The page's own logic, run in the real browser: rep counter, session log, frame window, card checks, ORT-web.

One page of the real app (served by musclevision-serve with a tiny generated model); the tests
import its ES modules and feed them synthetic signals whose right answers are known.
"""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest
from web_helpers import serve_in_thread, wait_ready, write_tiny_export

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def page(launch_browser, tmp_path_factory, assets_ready):
    card = write_tiny_export(
        tmp_path_factory.mktemp("logic"), window=16, world=True, classes=["Squat", "Push-up", "Jumping jack"]
    )
    with serve_in_thread(card) as server:
        browser = launch_browser()
        page = browser.new_page()
        page.goto(server.url + "?camera=off")
        wait_ready(page)
        page.card = card
        yield page
        page.close()


def run(page, body: str, arg=None):
    """Evaluate an async JS function body with the page's modules imported as R (reps), L (session), C (classifier)."""
    return page.evaluate(
        "async (arg) => { const R = await import('/js/reps.js'); const L = await import('/js/session.js');"
        " const C = await import('/js/classifier.js');" + body + "}",
        arg,
    )


def sampled(fn, seconds: float, fps: float = 15.0, seed: int = 0, noise: float = 0.0):
    rng = np.random.default_rng(seed)
    t = np.arange(0, seconds, 1 / fps)
    return [[float(ti * 1000), float(fn(ti) + noise * rng.standard_normal())] for ti in t]


COUNT = """
  const c = new R.SignalCounter({minAmplitude: arg.minAmplitude});
  let reps = 0;
  for (const [t, v] of arg.samples) if (c.updateValue(v, t)) reps++;
  return reps;
"""


def count(page, samples, min_amplitude=0.25):
    return run(page, COUNT, {"samples": samples, "minAmplitude": min_amplitude})


def test_page_is_idle_without_a_source(page):
    snap = page.evaluate("() => window.musclevision.snapshot()")
    assert snap["ready"] and snap["state"] == "idle" and snap["source"] is None
    assert snap["classes"] == ["Squat", "Push-up", "Jumping jack"] and snap["window"] == 16
    assert page.locator("#stage-msg").is_visible()


def test_stats_object_is_read_only(page):
    result = page.evaluate(
        "() => { const m = window.musclevision; try { m.state = 'x'; } catch (e) {}"
        " try { m.reps.Squat = 99; } catch (e) {} return [m.state, m.reps.Squat, Object.isFrozen(m)]; }"
    )
    assert result == ["idle", 0, True]


@pytest.mark.parametrize("cycles, period", [(10, 1.5), (6, 2.5), (12, 0.9)])
def test_counts_every_clean_cycle(page, cycles, period):
    # Standing (high) -> squat (low) -> standing, `cycles` times, with keypoint jitter.
    samples = sampled(lambda t: 1.2 + 0.4 * math.cos(2 * math.pi * t / period), cycles * period + 0.3, noise=0.02)
    assert count(page, samples) == cycles


def test_noise_and_drift_do_not_count(page):
    still = sampled(lambda t: 1.4, 30, noise=0.04, seed=1)
    drifting = sampled(lambda t: 1.4 + 0.01 * t, 30, noise=0.04, seed=2)
    assert count(page, still) == 0
    assert count(page, drifting) == 0


def test_motion_below_the_minimum_amplitude_does_not_count(page):
    small = sampled(lambda t: 1.2 + 0.1 * math.cos(2 * math.pi * t / 1.5), 15, noise=0.01)
    assert count(page, small) == 0


def test_hysteresis_does_not_double_count(page):
    # One real rep, then the value hovers around the middle of the range with jitter for 3 s.
    rep = sampled(lambda t: 1.2 + 0.4 * math.cos(2 * math.pi * t / 1.5), 1.5)
    hover = [[t + 1500, 1.2 + 0.08 * math.sin(t / 40)] for t, _ in sampled(lambda t: 0, 3)]
    assert count(page, rep + hover) == 1


def test_a_long_gap_starts_afresh(page):
    # Half a rep, 5 s without samples (person gone), then the other half: no rep.
    first = sampled(lambda t: 1.2 + 0.4 * math.cos(2 * math.pi * t / 2), 1.0)
    second = [[t + 6000, v] for t, v in sampled(lambda t: 1.2 - 0.4 * math.cos(2 * math.pi * t / 2), 1.0)]
    assert count(page, first + second) == 0


def skeleton_frames(kind: str, cycles: int, period: float = 1.6, fps: float = 15.0):
    """Synthetic PoseLandmarker frames (33 x 4, visibility 0.99) of squats or push-ups."""
    frames = []
    for t in np.arange(0, cycles * period + 0.2, 1 / fps):
        phase = 0.5 - 0.5 * math.cos(2 * math.pi * t / period)  # 0 = rest position, 1 = bottom
        f = np.full((33, 4), 0.5, np.float32)
        f[:, 3] = 0.99
        if kind == "squat":
            drop = 0.2 * phase
            f[[11, 12], 1] = 0.30 + drop  # shoulders
            f[[23, 24], 1] = 0.55 + drop  # hips
            f[[25, 26], 1] = 0.72  # knees
            f[[27, 28], 1] = 0.90  # ankles
            f[[11, 23, 25, 27], 0] = 0.45
            f[[12, 24, 26, 28], 0] = 0.55
        else:  # push-up seen from the side: elbow angle 170 deg -> 80 deg
            angle = math.radians(170 - 90 * phase)
            shoulder, elbow = np.array([0.40, 0.50]), np.array([0.40, 0.62])
            upper = shoulder - elbow
            rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
            wrist = elbow + rot @ upper
            for s, e, w in ((11, 13, 15), (12, 14, 16)):
                f[s, :2], f[e, :2], f[w, :2] = shoulder, elbow, wrist
            f[[23, 24], :2] = [0.75, 0.55]
        frames.append([float(t * 1000), f.reshape(-1).tolist()])
    return frames


@pytest.mark.parametrize(
    "exercise, kind, signal",
    [
        ("BodyWeightSquats", "squat", "hipHeight"),
        ("Lunges", "squat", "hipHeight"),
        ("PushUps", "pushup", "elbowAngle"),
        ("WallPushups", "pushup", "elbowAngle"),
        ("BenchPress", "pushup", "elbowAngle"),
        ("Goblet squat", "squat", "hipHeight"),  # unknown class names: by keyword
        ("Push-up", "pushup", "elbowAngle"),
        ("Mystery move", "squat", "auto"),  # anything else: the signal that moves most
        ("Mystery move", "pushup", "auto"),
    ],
)
def test_rep_counter_on_skeletons(page, exercise, kind, signal):
    result = run(
        page,
        """
        const c = new R.RepCounter(arg.exercise);
        let reps = 0;
        for (const [t, f] of arg.frames) if (c.update(Float32Array.from(f), t, 4 / 3)) reps++;
        return [c.signalName, reps];
        """,
        {"exercise": exercise, "frames": skeleton_frames(kind, cycles=5)},
    )
    assert result == [signal, 5]


def test_invisible_joints_do_not_count(page):
    frames = skeleton_frames("squat", cycles=5)
    for _, f in frames:
        for i in (27, 28):  # ankles not visible
            f[i * 4 + 3] = 0.1
    reps = run(
        page,
        "const c = new R.RepCounter('BodyWeightSquats'); let n = 0;"
        " for (const [t, f] of arg) if (c.update(Float32Array.from(f), t, 4 / 3)) n++; return n;",
        frames,
    )
    assert reps == 0


SESSION = """
  const log = new L.SessionLog({minBoutSeconds: 1, graceSeconds: 2});
  for (const [t, ex, rep] of arg) { log.update(ex, t); if (rep) log.addRep(ex); }
  return {rows: log.rows(), csv: log.toCSV(), json: log.toJSON({model: {name: 'm'}})};
"""


def timeline(*segments, fps=10):
    """[(exercise or None, seconds, reps), ...] -> [[tMs, exercise, rep?], ...] at `fps`."""
    out, t = [], 0.0
    for exercise, seconds, reps in segments:
        n = int(round(seconds * fps))
        rep_at = {int((k + 0.5) * n / reps) for k in range(reps)} if reps else set()
        for i in range(n):
            out.append([t * 1000, exercise, i in rep_at])
            t += 1 / fps
    return out


def test_session_log_bouts(page):
    events = timeline(
        ("PushUps", 0.4, 0),  # flicker: shorter than a bout
        (None, 1.0, 0),
        ("BodyWeightSquats", 5.0, 3),
        ("Lunges", 0.3, 0),  # flicker inside a bout
        (None, 1.0, 0),  # short dropout: same bout
        ("BodyWeightSquats", 2.0, 1),
        ("PushUps", 3.0, 4),
        (None, 3.0, 0),  # longer than the grace period: the bout ends
    )
    result = run(page, SESSION, events)
    rows = [(r["exercise"], round(r["duration_s"], 1), r["reps"], r["ongoing"]) for r in result["rows"]]
    assert rows == [("BodyWeightSquats", 8.2, 4, False), ("PushUps", 2.9, 4, False)]


def test_session_log_exports(page):
    events = timeline(("BodyWeightSquats", 3.0, 2), ('Push, "wide"', 2.0, 1), ("=cmd", 2.0, 0))
    result = run(page, SESSION, events)
    table = list(csv.DictReader(io.StringIO(result["csv"])))
    assert list(table[0].keys()) == ["exercise", "start", "end", "duration_s", "reps"]
    assert [r["exercise"] for r in table] == ["BodyWeightSquats", 'Push, "wide"', "'=cmd"]
    assert [int(r["reps"]) for r in table] == [2, 1, 0]
    assert all(r["start"].endswith("Z") and r["start"] <= r["end"] for r in table)
    data = result["json"]
    assert data["format"] == "musclevision-session/1" and data["model"] == {"name": "m"}
    assert data["columns"] == ["exercise", "start", "end", "duration_s", "reps"]
    assert data["bouts"][-1]["ongoing"] is True  # the last bout has not ended yet
    assert data["reps_total"] == {"BodyWeightSquats": 2, 'Push, "wide"': 1, "=cmd": 0}


def test_frame_window_keeps_the_last_frames_oldest_first(page):
    result = run(
        page,
        """
        const w = new C.FrameWindow(3, true);
        const img = (v) => new Float32Array(132).fill(v), wld = (v) => new Float32Array(99).fill(v);
        const states = [];
        for (const v of [1, 2, null, 4, 5]) {
          w.push(v === null ? null : img(v), v === null ? null : wld(v + 0.5));
          states.push(w.full);
        }
        const out = w.ordered({image: new Float32Array(3 * 132), world: new Float32Array(3 * 99)});
        return {full: states, image: [out.image[0], out.image[132], out.image[264], out.image[395]],
                world: [out.world[0], out.world[99], out.world[198]]};
        """,
    )
    assert result["full"] == [False, False, True, True, True]
    assert math.isnan(result["image"][0])  # the no-person frame is a NaN row
    assert result["image"][1:] == [4, 5, 5]
    assert math.isnan(result["world"][0])
    assert result["world"][1:] == [4.5, 5.5]


def test_frame_window_resamples_to_the_training_frame_rate(page):
    """At 15 processed frames/s, a 25 fps model still gets poses 40 ms apart (interpolated), as in training."""
    result = run(
        page,
        """
        const w = new C.FrameWindow(4, false, 25);
        const img = (v) => new Float32Array(132).fill(v);
        const states = [];
        // x = the frame time in ms; one frame (at 200 ms) has no person
        for (const t of [0, 66.7, 133.3, 200, 266.7, 333.3]) {
          w.push(t === 200 ? null : img(t), null, t);
          states.push(w.full);
        }
        const out = w.ordered({image: new Float32Array(4 * 132)});
        return {full: states, slots: [0, 1, 2, 3].map((k) => out.image[k * 132]), present: w.presentCount()};
        """,
    )
    assert result["full"] == [False, False, True, True, True, True]  # needs 3 x 40 ms of history
    # slots at 213.3, 253.3, 293.3, 333.3 ms: the first two touch the frame without a person
    assert math.isnan(result["slots"][0]) and math.isnan(result["slots"][1])
    assert result["slots"][2] == pytest.approx(293.3, abs=0.05) and result["slots"][3] == pytest.approx(333.3, abs=0.01)
    assert result["present"] == 2


@pytest.mark.parametrize(
    "change, message",
    [
        ({"format": "other"}, "format"),
        ({"classes": []}, "classes"),
        ({"classes": ["A", "A"]}, "distinct"),
        ({"window_policy": {"fps": 25, "window": 0, "min_detected": 1, "smoothing_s": 0, "threshold": 0.5}}, "window"),
        ({"inputs": [{"name": "pixels", "shape": [], "dtype": "float32"}]}, "inputs"),
        ({"window_policy": {"fps": 25, "window": 8, "min_detected": 1, "smoothing_s": 0, "threshold": 1.5}}, "threshold"),
    ],
)
def test_card_validation(page, change, message):
    card = {**json.loads(page.card.read_text()), **change}
    error = run(page, "try { C.validateCard(arg); return null; } catch (e) { return e.message; }", card)
    assert error and message in error


def test_ort_web_matches_onnxruntime(page):
    """The page's classifier (onnxruntime-web, wasm) gives Python onnxruntime's probabilities, NaN rows included."""
    import onnxruntime

    card = json.loads(page.card.read_text())
    rng = np.random.default_rng(3)
    image = rng.uniform(0, 1, (16, 33, 4)).astype(np.float32)
    world = rng.uniform(-0.5, 0.5, (16, 33, 3)).astype(np.float32)
    image[5], world[5] = np.nan, np.nan
    probs = run(
        page,
        """
        const card = arg.card;
        const clf = await C.createClassifier(card, '/model/' + card.onnx);
        const w = new C.FrameWindow(card.window_policy.window, true);
        for (let i = 0; i < card.window_policy.window; i++)
          w.push(arg.nan.includes(i) ? null : Float32Array.from(arg.image[i]), Float32Array.from(arg.world[i]));
        return Array.from(await clf.run(w));
        """,
        {
            "card": card,
            "image": np.nan_to_num(image).reshape(16, -1).tolist(),
            "world": np.nan_to_num(world).reshape(16, -1).tolist(),
            "nan": [5],
        },
    )
    session = onnxruntime.InferenceSession(str(page.card.parent / card["onnx"]), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"landmarks": image[None], "world": world[None]})[0][0]
    np.testing.assert_allclose(probs, expected, rtol=1e-4, atol=1e-6)
