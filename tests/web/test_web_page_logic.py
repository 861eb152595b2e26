"""The page's modules in the real browser: the page at rest, the frame window, card checks, ORT-web.

One page of the real app (served by musclevision-serve with a tiny generated model); the tests import its
ES modules there. The engine's decisions (states, smoothing, reps, session log) are tested in Node
(tests/js/*.test.mjs), where they run the same.
"""

from __future__ import annotations

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
    """Evaluate an async JS function body with the page's classifier module imported as C."""
    return page.evaluate("async (arg) => { const C = await import('/js/classifier.js');" + body + "}", arg)


def test_page_is_idle_without_a_source(page):
    snap = page.evaluate("() => window.musclevision.snapshot()")
    assert snap["ready"] and snap["state"] == "idle" and snap["source"] is None
    assert snap["classes"] == ["Squat", "Push-up", "Jumping jack"] and snap["window"] == 16
    assert snap["log"] == [] and snap["bout"] is None and snap["reps"] == {"Squat": 0, "Push-up": 0, "Jumping jack": 0}
    assert page.locator("#stage-msg").is_visible()


def test_stats_object_is_read_only(page):
    result = page.evaluate(
        "() => { const m = window.musclevision; try { m.state = 'x'; } catch (e) {}"
        " try { m.reps.Squat = 99; } catch (e) {} return [m.state, m.reps.Squat, Object.isFrozen(m)]; }"
    )
    assert result == ["idle", 0, True]


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
