"""Training keypoints and live keypoints come from the same model: the page's PoseLandmarker
(tasks-vision in Chromium) and the extractor's (mediapipe in Python), same `.task` bundle, same
frames and timestamps, must agree."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from web_helpers import serve_in_thread, wait_ready

from musclevision.extract.landmarker import PoseSettings, create_landmarker, detect, timestamps_ms
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
    with create_landmarker(PoseSettings(model="full")) as landmarker:
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
