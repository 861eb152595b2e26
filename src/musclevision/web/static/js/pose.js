// Pose: MediaPipe tasks-vision PoseLandmarker (VIDEO mode, one person), loaded from our own origin.

import { fetchBytes } from "./classifier.js";

export const VISION_BASE = "/vendor/tasks-vision/";

/**
 * Create the landmarker from the served `.task` bundle and wasm fileset.
 * Returns {detect(source, timestampMs) -> {image: Float32Array(132), world: Float32Array(99)} | null,
 *          connections: [[a, b], ...], close()}.
 */
export async function createPose({ bundleUrl, delegate = "CPU", minDetection = 0.5, minPresence = 0.5, minTracking = 0.5 }) {
  let vision;
  try {
    vision = await import(VISION_BASE + "vision_bundle.mjs");
  } catch (err) {
    throw new Error(`MediaPipe tasks-vision could not be loaded from ${VISION_BASE} (${err.message}); run \`make setup\``);
  }
  const bundle = await fetchBytes(bundleUrl, "pose bundle");
  let landmarker;
  try {
    const fileset = await vision.FilesetResolver.forVisionTasks(VISION_BASE + "wasm");
    landmarker = await vision.PoseLandmarker.createFromOptions(fileset, {
      baseOptions: { modelAssetBuffer: bundle, delegate },
      runningMode: "VIDEO",
      numPoses: 1,
      minPoseDetectionConfidence: minDetection,
      minPosePresenceConfidence: minPresence,
      minTrackingConfidence: minTracking,
      outputSegmentationMasks: false,
    });
  } catch (err) {
    throw new Error(`pose landmarker could not start with ${bundleUrl} (${delegate} delegate): ${err.message || err}`);
  }
  const connections = vision.PoseLandmarker.POSE_CONNECTIONS.map((c) => [c.start, c.end]);
  let lastTs = -1;

  function detect(source, timestampMs) {
    // VIDEO mode needs strictly increasing integer timestamps.
    const ts = Math.max(Math.round(timestampMs), lastTs + 1);
    lastTs = ts;
    let found = null;
    landmarker.detectForVideo(source, ts, (result) => {
      const lm = result.landmarks && result.landmarks[0];
      if (!lm || lm.length !== 33) return;
      const image = new Float32Array(33 * 4);
      const world = new Float32Array(33 * 3).fill(NaN);
      for (let i = 0; i < 33; i++) {
        const p = lm[i];
        image[i * 4] = p.x;
        image[i * 4 + 1] = p.y;
        image[i * 4 + 2] = p.z;
        image[i * 4 + 3] = p.visibility ?? NaN;
      }
      const wl = result.worldLandmarks && result.worldLandmarks[0];
      if (wl && wl.length === 33) {
        for (let i = 0; i < 33; i++) {
          world[i * 3] = wl[i].x;
          world[i * 3 + 1] = wl[i].y;
          world[i * 3 + 2] = wl[i].z;
        }
      }
      found = { image, world };
    });
    return found;
  }

  return { detect, connections, close: () => landmarker.close() };
}
