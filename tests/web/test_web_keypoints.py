"""Training keypoints and live keypoints come from the same model: the page's PoseLandmarker
(tasks-vision in Chromium) and the extractor's (mediapipe in Python), same `.task` bundle, same
frames and timestamps, must agree."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from web_helpers import serve_in_thread, wait_ready

from musclevision.extract.landmarker import PoseSettings, PoseTracker, create_landmarker, detect, timestamps_ms
from musclevision.extract.video import iter_frames, open_video

pytestmark = pytest.mark.integration
CLIP = "PushUps/v_PushUps_g12_c01.avi"  # one of the clips with the paper authors' reference keypoints
FRAMES = 60

BROWSER_LANDMARKS = """async (arg) => {
  const { createPose } = await import('/js/pose.js');
  const pose = await createPose({ bundleUrl: arg.bundle });
  const out = [];
  for (let i = 0; i < arg.frames.length; i++) {
    const bytes = Uint8ClampedArray.from(atob(arg.frames[i]), (c) => c.charCodeAt(0));
    const found = pose.detect(new ImageData(bytes, arg.width, arg.height), arg.stamps[i]);
    out.push(found ? Array.from(found.image) : null);
  }
  pose.close();
  return out;
}"""


def test_page_and_extractor_landmarks_agree(ucf_videos, launch_browser, tiny_export, assets_ready):
    reader, info = open_video(ucf_videos / CLIP)
    frames = [f for _, f in zip(range(FRAMES), iter_frames(reader, info))]
    stamps = timestamps_ms(len(frames), info.fps)
    with create_landmarker(PoseSettings(model="full", num_poses=1)) as landmarker:  # bare, as createPose's defaults
        python = [detect(landmarker, f, t) for f, t in zip(frames, stamps)]

    rgba = [base64.b64encode(np.dstack([f, np.full(f.shape[:2], 255, np.uint8)]).tobytes()).decode() for f in frames]
    card = tiny_export(variant="full")
    with serve_in_thread(card) as server:
        page = launch_browser().new_page()
        page.goto(server.url + "?camera=off&classifier=off")
        wait_ready(page)
        browser = page.evaluate(BROWSER_LANDMARKS, {"bundle": "/models/pose/pose_landmarker_full.task", "frames": rgba,
                                                    "width": info.width, "height": info.height,
                                                    "stamps": [int(t) for t in stamps]})  # fmt: skip

    both = [i for i in range(len(frames)) if python[i] is not None and browser[i] is not None]
    assert len(both) >= 0.9 * len(frames), "the page finds a person where the extractor does (and vice versa)"
    assert abs(sum(p is not None for p in python) - sum(b is not None for b in browser)) <= 2
    ours = np.array([python[i][0] for i in both])[:, :, :2]
    theirs = np.array([browser[i] for i in both]).reshape(len(both), 33, 4)[:, :, :2]
    difference = np.abs(ours - theirs).mean()
    print(f"page vs extractor: mean |dx, dy| = {difference:.5f} over {len(both)} frames")
    assert difference < 0.01


# The page's PoseTracker copy with the extractor's settings (rotated retries, several people, the
# exerciser rule), created from a pose_model block as app.js does (the exporter copies cache_key() there).
BROWSER_TRACKER = """async (arg) => {
  const { createPose, poseOptions } = await import('/js/pose.js');
  const pose = await createPose({ bundleUrl: arg.bundle, ...poseOptions(arg.poseModel) });
  const out = [], turns = [], zooms = [];
  for (let i = 0; i < arg.frames.length; i++) {
    const bytes = Uint8ClampedArray.from(atob(arg.frames[i]), (c) => c.charCodeAt(0));
    const found = pose.detect(new ImageData(bytes, arg.width, arg.height), arg.stamps[i]);
    out.push(found ? Array.from(found.image) : null);
    turns.push(pose.orientation());
    zooms.push(pose.zoom());
  }
  const summary = pose.selector() ? pose.selector().summary() : null;
  const several = pose.several();
  pose.close();
  return { landmarks: out, turns, zooms, summary, several };
}"""


def page_tracker(launch_browser, tiny_export, frames, stamps, settings: PoseSettings):
    rgba = [base64.b64encode(np.dstack([f, np.full(f.shape[:2], 255, np.uint8)]).tobytes()).decode() for f in frames]
    height, width = frames[0].shape[:2]
    with serve_in_thread(tiny_export(variant=settings.model)) as server:
        page = launch_browser().new_page()
        page.goto(server.url + "?camera=off&classifier=off")
        wait_ready(page)
        return page.evaluate(BROWSER_TRACKER, {"bundle": f"/models/pose/pose_landmarker_{settings.model}.task", "frames": rgba,
                                               "width": width, "height": height, "stamps": [int(t) for t in stamps],
                                               "poseModel": settings.cache_key()})  # fmt: skip


def extractor_tracker(frames, stamps, settings: PoseSettings):
    height, width = frames[0].shape[:2]
    with PoseTracker(settings, width, height) as tracker:
        found, views = [], []
        for frame, stamp in zip(frames, stamps):
            found.append(tracker.detect(frame, stamp))
            views.append(tracker.current)  # (degrees, zoom-out) tracked after this frame
        return found, views, tracker.summary().get("people")


def test_page_and_extractor_agree_on_a_body_lying_across_the_frame(ucf_videos, launch_browser, tiny_export, assets_ready):
    """BenchPress g17_c07: the lifter lies across the frame and is found only in frames turned by 90° or
    270°; the page turns its canvas like the extractor turns the array, tracks in the same orientation
    and maps the landmarks back to the same place."""
    reader, info = open_video(ucf_videos / "BenchPress/v_BenchPress_g17_c07.avi")
    frames = list(iter_frames(reader, info))
    stamps = timestamps_ms(len(frames), info.fps)
    settings = PoseSettings.resolve(rotations=[90, 270], num_poses=1, zoom_out=1, min_pose_detection_confidence=0.5,
                                    min_pose_presence_confidence=0.5)  # fmt: skip
    python, python_views, _ = extractor_tracker(frames, stamps, settings)
    python_turns = [degrees for degrees, _ in python_views]
    browser = page_tracker(launch_browser, tiny_export, frames, stamps, settings)
    same_turn = sum(a == b for a, b in zip(browser["turns"], python_turns))
    print(f"orientations: extractor {python_turns}\npage      {browser['turns']}")
    assert same_turn >= 0.9 * len(frames) and set(python_turns[-20:]) <= {90, 270}, (browser["turns"], python_turns)
    both = [i for i in range(len(frames)) if python[i] is not None and browser["landmarks"][i] is not None]
    found = sum(p is not None for p in python)
    page_found = sum(b is not None for b in browser["landmarks"])
    print(
        "found (extractor/page):",
        "".join(".xoB"[(p is not None) + 2 * (b is not None)] for p, b in zip(python, browser["landmarks"])),
    )
    # A hard clip: frames at the detection threshold differ between the two runtimes (wasm / native), with or
    # without turning (measured on frames turned beforehand, no canvas turn: 6 of 72 frames found by one side
    # only; here 9 of 72). The frames both find must agree.
    assert found >= 0.5 * len(frames) and len(both) >= 0.75 * max(found, page_found), (found, page_found, len(both))
    ours = np.array([python[i][0] for i in both])[:, :, :2]
    theirs = np.array([browser["landmarks"][i] for i in both]).reshape(len(both), 33, 4)[:, :, :2]
    per_frame = np.abs(ours - theirs).mean(axis=(1, 2))  # [frames both found]
    difference, offset = per_frame.mean(), np.abs((theirs - ours).mean(axis=(0, 1))).max()
    print(f"lying lifter, page vs extractor: mean |dx, dy| = {difference:.5f} over {len(both)} frames")
    # Where both detect afresh (the clip's first frame, or a frame after one that neither side found) the turned frames
    # and the mapping back agree exactly: measured <= 0.0003 per frame, where a mapping one pixel off (1/320 in x) gives
    # 0.0016 and a wrong turn or flip tenths. The tracking frames drift apart between the runtimes on this hard clip
    # (up to 0.08 a frame, 0.025-0.030 on average), by how much depends on the CPU: the mean offset over the frames both
    # found stayed below 0.005 on the machines of earlier runs and was 0.0058 in y on an AMD EPYC one, so it is bounded
    # at 0.01 (a shift of about three pixels).
    fresh = [k for k, i in enumerate(both) if i == 0 or (python[i - 1] is None and browser["landmarks"][i - 1] is None)]
    assert fresh, "no frame where both sides detected afresh"
    assert per_frame[fresh].max() < 0.001, [(both[k], round(float(per_frame[k]), 5)) for k in fresh]
    assert difference < 0.04 and offset < 0.01, (difference, offset)


def test_page_and_extractor_keep_the_same_person_among_several(ucf_videos, launch_browser, tiny_export, assets_ready):
    """WallPushups g11 (an instructor beside the exerciser), several people: both run the several-people check on
    the same frames, start following both people on the same frame, and keep the same one."""
    reader, info = open_video(ucf_videos / "WallPushups/v_WallPushups_g11_c01.avi")
    frames = [f for _, f in zip(range(60), iter_frames(reader, info))]  # the switch comes within 1 s
    stamps = timestamps_ms(len(frames), info.fps)
    settings = PoseSettings.resolve(num_poses=2)
    python, _, python_summary = extractor_tracker(frames, stamps, settings)
    browser = page_tracker(launch_browser, tiny_export, frames, stamps, settings)
    hip = lambda lm: (lm[23 * 4] + lm[24 * 4]) / 2  # noqa: E731
    python_side = [None if p is None else hip(p[0].ravel()) < 0.5 for p in python]
    browser_side = [None if b is None else hip(b) < 0.5 for b in browser["landmarks"]]
    same = sum(a == b for a, b in zip(python_side, browser_side))
    print(f"same person kept in {same}/{len(frames)} frames; extractor {python_summary}, page {browser['summary']}")
    assert same >= 0.95 * len(frames)
    assert browser["summary"]["people_max"] == python_summary["people_max"] == 2
    several = browser["several"]
    assert python_summary["several_from_ms"] is not None and python_summary["several_from_ms"] <= 2000, python_summary
    assert (several["fromMs"], several["checks"]) == (python_summary["several_from_ms"], python_summary["checks"]), several


BROWSER_VIEWS = """async (arg) => {
  const { makeViewer } = await import('/js/pose.js');
  const viewer = makeViewer();
  const bytes = Uint8ClampedArray.from(atob(arg.frame), (c) => c.charCodeAt(0));
  const image = new ImageData(bytes, arg.width, arg.height);
  return arg.views.map(([degrees, zoom]) => {
    const canvas = viewer(image, arg.width, arg.height, degrees, zoom);
    const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    return { width: canvas.width, height: canvas.height, rgba: btoa(String.fromCharCode(...data)) };
  });
}"""


def test_the_page_draws_every_view_as_the_extractor_builds_it(launch_browser, tiny_export, assets_ready):
    """The canvas the page hands the landmarker for each view (turned, then centred on black, odd sizes and a zoom
    whose size rounds a half) holds exactly the pixels of the extractor's view array."""
    from musclevision.extract.landmarker import PoseTracker as Tracker

    height, width = 7, 5
    frame = np.random.default_rng(1).integers(1, 256, (height, width, 3), dtype=np.uint8)
    views = [(degrees, zoom) for zoom in (1.0, 2.0, 2.5) for degrees in (0, 90, 180, 270)]
    rgba = base64.b64encode(np.dstack([frame, np.full((height, width), 255, np.uint8)]).tobytes()).decode()
    with serve_in_thread(tiny_export()) as server:
        page = launch_browser().new_page()
        page.goto(server.url + "?camera=off&classifier=off")
        wait_ready(page)
        drawn = page.evaluate(BROWSER_VIEWS, {"frame": rgba, "width": width, "height": height, "views": views})
    for view, canvas in zip(views, drawn, strict=True):
        ours = Tracker._view(frame, view)
        theirs = np.frombuffer(base64.b64decode(canvas["rgba"]), np.uint8).reshape(canvas["height"], canvas["width"], 4)
        assert theirs.shape[:2] == ours.shape[:2], (view, theirs.shape, ours.shape)
        assert np.array_equal(theirs[..., :3], ours) and (theirs[..., 3] == 255).all(), view


def test_page_and_extractor_agree_when_the_frame_is_zoomed_out(ucf_videos, launch_browser, tiny_export, assets_ready):
    """BenchPress g20_c06, filmed so close that the lifter overflows the frame: found in 50 of 88 frames without
    zoom-out, 85 with it. Both sides retry on the frame centred in a black canvas twice as large, track in the view
    that worked (turn and zoom) and map the landmarks back to the same place."""
    reader, info = open_video(ucf_videos / "BenchPress/v_BenchPress_g20_c06.avi")
    frames = list(iter_frames(reader, info))
    stamps = timestamps_ms(len(frames), info.fps)
    settings = PoseSettings.resolve(rotations=[90, 270], num_poses=1, zoom_out=2)
    python, python_views, _ = extractor_tracker(frames, stamps, settings)
    browser = page_tracker(launch_browser, tiny_export, frames, stamps, settings)
    page_views = list(zip(browser["turns"], browser["zooms"]))
    same_view = sum(a == b for a, b in zip(page_views, python_views))
    found = sum(p is not None for p in python)
    page_found = sum(b is not None for b in browser["landmarks"])
    both = [i for i in range(len(frames)) if python[i] is not None and browser["landmarks"][i] is not None]
    print(
        f"same view (turn, zoom) in {same_view}/{len(frames)} frames; extractor {python_views[:8]}..., page {page_views[:8]}..."
    )
    print(
        "found (extractor/page):",
        "".join(".xoB"[(p is not None) + 2 * (b is not None)] for p, b in zip(python, browser["landmarks"])),
    )
    # measured: 85 of 88 frames found by each side, 84 by both, 87 in the same view, 84 zoomed out
    assert found >= 0.9 * len(frames) and sum(z == 2 for _, z in python_views) >= 0.5 * len(frames), python_views
    assert same_view >= 0.9 * len(frames) and len(both) >= 0.9 * max(found, page_found), (found, page_found, len(both))
    ours = np.array([python[i][0] for i in both])[:, :, :2]
    theirs = np.array([browser["landmarks"][i] for i in both]).reshape(len(both), 33, 4)[:, :, :2]
    per_frame = np.abs(ours - theirs).mean(axis=(1, 2))  # [frames both found]
    fresh = [k for k, i in enumerate(both) if i == 0 or (python[i - 1] is None and browser["landmarks"][i - 1] is None)]
    print(f"zoomed out, page vs extractor: median |dx, dy| = {np.median(per_frame):.5f} over {len(both)} frames; where both "
          f"detect afresh {[(both[k], round(float(per_frame[k]), 5)) for k in fresh]}")  # fmt: skip
    # Fresh detections (the first frame, a frame after one neither side found): the zoomed-out views and the mapping
    # back agree exactly (measured <= 0.0003; a mapping one pixel off gives 0.0016). The close-up lifter is a hard fit
    # that the two runtimes track apart for a while (measured 0.13-0.25 a frame over frames 2-17, then 0.01-0.06;
    # median 0.03), so the tracked frames are bounded by their median.
    assert fresh and per_frame[fresh].max() < 0.001, "where both detect afresh the zoomed views and the mapping agree exactly"
    assert np.median(per_frame) < 0.05, np.round(per_frame, 3).tolist()
