// MuscleVision live demo: camera (or video file) -> PoseLandmarker -> the engine (ONNX classifier, states,
// reps, session log: engine.js, the same module musclevision-replay runs offline) -> drawing.
//
// This file only feeds frames in and draws what the engine decided. Everything runs in this page; every
// file comes from the serving origin (musclevision-serve).
// URL parameters (all optional):
//   classifier=off      pose only (no ONNX model; for pose-only FPS measurements)
//   exercise=<Class>    count reps of this exercise whenever a person is visible, instead of
//                       only while it is recognised (the default, exercise=auto)
//   threshold=<0..1>    "unknown / no exercise" threshold (default: the card's window_policy.threshold)
//   smooth=<seconds>    time constant of the probability smoothing (default: window_policy.smoothing_s, 0 = raw)
//   mirror=0|1          mirror the view (display only; default: on for cameras, off for files)
//   camera=off          do not start the camera on load
//   loop=0|1            loop video files (default 0: a file plays once, as a recorded workout is analysed)
//   realtime=0|1        video files: 1 plays them at their own speed, skipping the frames this device cannot keep up
//                       with (as a camera does); default 0: the video waits while each frame is processed, so every
//                       frame is seen whatever the device (the same frames musclevision-replay reads)
//   delegate=GPU        MediaPipe GPU delegate (default CPU)
// Read-only stats for tests/benchmarks: window.musclevision (see `api` below).

import { createClassifier, validateCard } from "./classifier.js";
import { drawSignal, drawSkeleton } from "./draw.js";
import { Engine } from "./engine.js";
import { createPose, poseOptions } from "./pose.js";
import { DEFAULTS as REP_DEFAULTS } from "./reps.js";

const CARD_URL = "/model/card.json";
const FPS_WINDOW_MS = 2000;
const LATENCY_SAMPLES = 600;

const params = new URLSearchParams(location.search);
const flag = (name, fallback) => {
  if (!params.has(name)) return fallback;
  return !["0", "false", "off", "no"].includes(params.get(name).toLowerCase());
};
const number = (name, fallback) => {
  const v = Number(params.get(name));
  return params.has(name) && Number.isFinite(v) ? v : fallback;
};
const config = {
  classifier: flag("classifier", true),
  delegate: (params.get("delegate") || "CPU").toUpperCase() === "GPU" ? "GPU" : "CPU",
  mirror: params.has("mirror") ? flag("mirror", true) : null,
  threshold: number("threshold", null),
  smoothSeconds: number("smooth", null),
  exercise: params.get("exercise") || "auto",
  autostartCamera: flag("camera", true),
  loop: flag("loop", false),
  realtime: flag("realtime", false),
};

const $ = (id) => document.getElementById(id);
const el = {
  status: $("status"), banner: $("banner"), stage: $("stage"), video: $("video"), overlay: $("overlay"),
  stageMsg: $("stage-msg"), stageLabel: $("stage-label"), camera: $("camera"), useCamera: $("use-camera"),
  file: $("file"), mirror: $("mirror"), pause: $("pause"), label: $("label"), labelSub: $("label-sub"),
  bars: $("bars"), fps: $("fps"), poseMs: $("pose-ms"), clfMs: $("clf-ms"), mode: $("mode"), reps: $("reps"),
  signal: $("signal"), signalCaption: $("signal-caption"), logBody: document.querySelector("#log tbody"),
  logEmpty: $("log-empty"), csv: $("download-csv"), json: $("download-json"), clear: $("clear-log"),
  modelInfo: $("model-info"),
};
const overlayCtx = el.overlay.getContext("2d");
const signalCtx = el.signal.getContext("2d");

// ---------------------------------------------------------------- state
// What the engine decides (state, label, probabilities, reps, log) is read from `engine`; S holds the page's own.
const S = {
  ready: false,
  fileEnded: false, // a video file played to its end (the panel says so until another source starts)
  state: "loading", // loading | error | idle | running (then the engine's: no_person | buffering | pose_only | unknown | exercise)
  error: null,
  sourceError: null,
  warnings: [],
  card: null,
  classes: [],
  fps: 0,
  poseMs: null,
  classifierMs: null,
  frames: 0,
  personFrames: 0,
  classifierRuns: 0,
  poseMsTotal: 0,
  classifierMsTotal: 0,
  poseSamples: [],
  classifierSamples: [],
  source: null, // "camera" | "file" | null
  sourceLabel: "",
  paused: false,
};
let pose = null;
let classifier = null;
let engine = null;
let frameTimes = [];
let mediaClock = null; // video files: the engine's time follows the video, see frameTime
let lastEngineT = -Infinity;
/** The engine's state once it runs frames; the page's own (loading, error, idle) before and between sources. */
const state = () => (["loading", "error", "idle"].includes(S.state) || !engine ? S.state : engine.state);
const label = () => (state() === "exercise" ? engine.label : null);

const copy = (v) => (v === null || typeof v !== "object" ? v : JSON.parse(JSON.stringify(v)));
const api = {
  /** Everything at once, as plain data (plus `now` = performance.now() of the snapshot). */
  snapshot() {
    const out = {};
    for (const key of Object.keys(api)) if (key !== "snapshot") out[key] = api[key];
    out.now = performance.now();
    return out;
  },
};
const exposed = {
  ready: () => S.ready,
  state: () => state(),
  label: () => label(),
  error: () => S.error,
  sourceError: () => S.sourceError,
  warnings: () => [...S.warnings],
  classes: () => [...S.classes],
  window: () => (S.card ? S.card.window_policy.window : null),
  minDetected: () => (S.card ? S.card.window_policy.min_detected : null),
  threshold: () => (engine ? engine.policy.threshold : null),
  classifierEnabled: () => config.classifier,
  probabilities: () => copy(engine && engine.probabilities),
  raw: () => copy(engine && engine.raw),
  fps: () => S.fps,
  poseMs: () => S.poseMs,
  classifierMs: () => S.classifierMs,
  frames: () => S.frames,
  personFrames: () => S.personFrames,
  classifierRuns: () => S.classifierRuns,
  poseMsTotal: () => S.poseMsTotal,
  classifierMsTotal: () => S.classifierMsTotal,
  poseSamples: () => [...S.poseSamples],
  classifierSamples: () => [...S.classifierSamples],
  reps: () => (engine ? engine.reps : {}),
  bout: () => (engine && engine.bout ? { exercise: engine.bout.exercise, reps: engine.bout.reps } : null),
  mode: () => (engine ? engine.mode : "auto"),
  counting: () => (engine ? engine.counting : null),
  source: () => S.source,
  sourceLabel: () => S.sourceLabel,
  paused: () => S.paused,
  log: () => (engine ? engine.log.rows() : []),
};
for (const [key, get] of Object.entries(exposed)) Object.defineProperty(api, key, { get, enumerable: true });
window.musclevision = Object.freeze(api);

// ---------------------------------------------------------------- messages
function showBanner(message, level = "error") {
  el.banner.textContent = message;
  el.banner.dataset.level = level;
  el.banner.hidden = false;
}
/** Start-up warnings (a model trained on synthetic data) and the camera/file message, together: one never hides the
 * other. A fatal error stands alone. */
function showWarnings() {
  if (S.error) return;
  const lines = [...S.warnings, S.sourceError].filter(Boolean);
  if (lines.length) showBanner(lines.join("\n"), "warn");
  else el.banner.hidden = true;
}
function addWarning(message) {
  S.warnings.push(message);
  showWarnings();
}
function stageMessage(text) {
  el.stageMsg.textContent = text || "";
  el.stageMsg.hidden = !text;
}
function fatal(message) {
  S.state = "error";
  S.error = message;
  S.ready = false;
  showBanner(message);
  stageMessage(S.frames ? "Processing stopped: see the message above." : "The demo could not start: see the message above.");
  renderStatus();
  console.error("[musclevision]", message);
}

// ---------------------------------------------------------------- sources
let sourceToken = 0;
let loopId = 0; // the running processing loop; bumping it stops the current one
let loopActive = false;
let busy = false;
let endPending = false; // a file ended while a frame was being processed (finishFile runs after it)
let stream = null;
let fileUrl = null;
let mirrorTouched = config.mirror !== null;

function stopSource() {
  if (stream) stream.getTracks().forEach((t) => t.stop());
  stream = null;
  if (fileUrl) URL.revokeObjectURL(fileUrl);
  fileUrl = null;
  el.video.pause();
  el.video.srcObject = null;
  el.video.removeAttribute("src");
  S.source = null;
  S.sourceLabel = "";
  S.fileEnded = false;
  stopLoop();
  clearRates();
  endPending = false;
  overlayCtx.clearRect(0, 0, el.overlay.width, el.overlay.height);
}

/** A video file played to its end: its last bout is closed, nothing more is processed (Pause cannot play it again:
 * its reps would count twice), and the panel says so. */
function finishFile() {
  endPending = false;
  engine && engine.log.close();
  renderLog();
  stopLoop();
  clearRates();
  S.paused = false;
  el.pause.textContent = "Pause";
  el.pause.disabled = true;
  S.state = "idle";
  S.fileEnded = true;
  overlayCtx.clearRect(0, 0, el.overlay.width, el.overlay.height); // the last frame's skeleton, not a live one
  stageMessage("End of video. Choose another file or the camera.");
  render();
}

/** Nothing is being processed: the stats panel shows no rate or latency (not the last source's). */
function clearRates() {
  frameTimes = [];
  S.fps = 0;
  S.poseMs = S.classifierMs = null;
  shownPoseMs = shownClfMs = null;
}

function cameraErrorMessage(err) {
  const name = err && err.name;
  if (name === "NotAllowedError" || name === "SecurityError")
    return (
      "Camera access was denied. Allow the camera for this site in the browser's site settings and press " +
      "\"Use camera\" (the video is processed on this device and never uploaded), or use a video file."
    );
  if (name === "NotFoundError" || name === "OverconstrainedError" || name === "DevicesNotFoundError")
    return "No camera was found. Connect a camera and press \"Use camera\", or use a video file.";
  if (name === "NotReadableError" || name === "TrackStartError" || name === "AbortError")
    return "The camera could not be started: it may be in use by another application. Close it and press \"Use camera\", or use a video file.";
  return `The camera could not be started (${name || "error"}: ${(err && err.message) || err}). You can use a video file instead.`;
}

function sourceFailed(message) {
  S.sourceError = message;
  S.source = null;
  showWarnings();
  stageMessage(message);
  if (S.ready) S.state = "idle";
  renderStatus();
}

async function startCamera(deviceId) {
  const token = ++sourceToken;
  stopSource();
  S.sourceError = null;
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    sourceFailed(
      window.isSecureContext
        ? "This browser does not offer camera access. Use a video file instead."
        : "Browsers only allow the camera on https:// or http://localhost pages. Open this page via " +
            "http://127.0.0.1 on the machine running musclevision-serve, serve it with --certfile/--keyfile, " +
            "or use a video file.",
    );
    return;
  }
  stageMessage("Starting camera…");
  const size = { width: { ideal: 640 }, height: { ideal: 480 } };
  const video = deviceId ? { deviceId: { exact: deviceId }, ...size } : { facingMode: "user", ...size };
  try {
    const s = await navigator.mediaDevices.getUserMedia({ audio: false, video });
    if (token !== sourceToken) {
      s.getTracks().forEach((t) => t.stop());
      return;
    }
    stream = s;
    el.video.srcObject = s;
    S.source = "camera";
    S.sourceLabel = (s.getVideoTracks()[0] && s.getVideoTracks()[0].label) || "camera";
    await el.video.play();
    if (token !== sourceToken) return;
    sourceStarted();
    listCameras();
  } catch (err) {
    if (token === sourceToken) sourceFailed(cameraErrorMessage(err));
  }
}

async function listCameras() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
  let devices = [];
  try {
    devices = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "videoinput");
  } catch {
    return;
  }
  const current = stream && stream.getVideoTracks()[0] ? stream.getVideoTracks()[0].getSettings().deviceId : "";
  el.camera.replaceChildren();
  if (!devices.length || devices.every((d) => !d.deviceId)) {
    el.camera.append(new Option(devices.length ? "Default camera" : "No camera found", ""));
    return;
  }
  devices.forEach((d, i) => el.camera.append(new Option(d.label || `Camera ${i + 1}`, d.deviceId, false, d.deviceId === current)));
}

function startFile(file) {
  if (!file) return;
  const token = ++sourceToken;
  stopSource();
  S.sourceError = null;
  fileUrl = URL.createObjectURL(file);
  el.video.loop = config.loop;
  el.video.src = fileUrl;
  S.source = "file";
  S.sourceLabel = file.name;
  stageMessage(`Opening ${file.name}…`);
  el.video
    .play()
    .then(() => token === sourceToken && sourceStarted())
    .catch((err) => {
      if (token === sourceToken)
        sourceFailed(`${file.name} cannot be played by this browser (${err.name || err}); try an MP4 (H.264) or WebM file.`);
    });
}

function sourceStarted() {
  showWarnings(); // the camera/file message is gone (its source started), start-up warnings stay
  engine && engine.reset();
  // A camera's bouts happen now: the log gives their times of day. A file's were recorded at a time the browser
  // cannot read: its bouts get places in the video instead (the clock is set at its first frame, see frameTime).
  if (engine && S.source !== "file") engine.log.setClock(performance.timeOrigin);
  frameTimes = [];
  mediaClock = null;
  S.paused = false;
  el.pause.disabled = false;
  el.pause.textContent = "Pause";
  if (!mirrorTouched) el.mirror.checked = S.source === "camera";
  applyMirror();
  fitStage();
  if (S.ready) {
    stageMessage("");
    S.state = "running";
  } else if (!S.error) {
    stageMessage("Loading models…");
  }
  renderStatus();
  startLoop();
}

function fitStage() {
  const { videoWidth: w, videoHeight: h } = el.video;
  if (!w || !h) return;
  el.stage.style.aspectRatio = `${w} / ${h}`;
  if (el.overlay.width !== w || el.overlay.height !== h) {
    el.overlay.width = w;
    el.overlay.height = h;
  }
}

function applyMirror() {
  el.stage.classList.toggle("mirrored", el.mirror.checked);
}

// ---------------------------------------------------------------- processing loop
// One frame at a time, always the newest: the callback for the next video frame is requested
// before processing the current one, so a frame presented while pose/classifier run is picked
// up as soon as they finish (the loop then runs as fast as the models allow, up to the camera
// rate); callbacks that arrive while a frame is being processed are skipped.
function startLoop() {
  if (!S.ready || !S.source || S.paused || loopActive) return;
  loopActive = true;
  schedule(++loopId);
}

function stopLoop() {
  loopActive = false;
  loopId += 1;
}

function schedule(id) {
  if (id !== loopId) return;
  if (el.video.requestVideoFrameCallback) el.video.requestVideoFrameCallback(() => step(id));
  else requestAnimationFrame(() => step(id));
}

let lastMediaTime = -1;
async function step(id) {
  if (id !== loopId) return;
  schedule(id);
  if (busy) return;
  const v = el.video;
  const fresh = v.requestVideoFrameCallback || S.source === "camera" || v.currentTime !== lastMediaTime;
  if (v.readyState < 2 || !v.videoWidth || !fresh) return;
  lastMediaTime = v.currentTime;
  busy = true;
  // A video file waits while its frame is processed (every frame seen, however slow the device), unless realtime=1.
  const held = S.source === "file" && !config.realtime && Boolean(v.requestVideoFrameCallback) && !v.paused && !v.ended;
  if (held) v.pause();
  try {
    await processFrame();
  } catch (err) {
    stopLoop();
    fatal(`Processing failed: ${err.message || err}`);
  } finally {
    busy = false;
    if (endPending && S.source === "file") finishFile();
    else if (held && S.source === "file" && !S.paused && id === loopId) v.play().catch(() => {});
  }
}

function pushSample(list, value) {
  list.push(value);
  if (list.length > LATENCY_SAMPLES) list.shift();
}

async function processFrame() {
  const video = el.video;
  if (el.overlay.width !== video.videoWidth || el.overlay.height !== video.videoHeight) fitStage();
  const t0 = performance.now();
  const det = pose.detect(video, t0);
  const t1 = performance.now();
  const poseMs = t1 - t0;
  S.frames += 1;
  S.poseMs = poseMs;
  S.poseMsTotal += poseMs;
  pushSample(S.poseSamples, poseMs);
  frameTimes.push(t1);
  while (frameTimes.length && t1 - frameTimes[0] > FPS_WINDOW_MS) frameTimes.shift();
  S.fps = frameTimes.length > 1 ? ((frameTimes.length - 1) * 1000) / (frameTimes[frameTimes.length - 1] - frameTimes[0]) : 0;
  if (det) S.personFrames += 1;
  await engine.step(frameTime(t0), det, video.videoWidth / video.videoHeight);
  const counter = engine.counting && engine.counters[engine.counting];
  drawSkeleton(overlayCtx, det && det.image, counter ? counter.active.signal.landmarks : []);
  render();
}

/**
 * The engine's time for a frame grabbed at `now` (ms). Camera: now. Video file: the video's own time, so the
 * engine sees the recorded motion at its real speed whatever this device manages (and as musclevision-replay
 * does); it keeps increasing across loops and seeks back, continuing after the last frame.
 */
function frameTime(now) {
  let t = now;
  if (S.source === "file") {
    const media = el.video.currentTime * 1000;
    if (!mediaClock || media < mediaClock.lastMedia) {
      mediaClock = { base: Math.max(now, lastEngineT + 40) - media, lastMedia: media };
      engine?.log.setClock(null, mediaClock.base); // the engine's time of the video's 0:00 (again after a loop or a seek back)
    }
    mediaClock.lastMedia = media;
    t = mediaClock.base + media;
  }
  lastEngineT = Math.max(t, lastEngineT + 1); // strictly increasing, whatever the source
  return lastEngineT;
}

/** The model, timed for the stats panel (the engine only sees a function from a window to probabilities). */
function timedClassifier(clf) {
  return async (frames) => {
    const c0 = performance.now();
    const probs = await clf.run(frames);
    S.classifierMs = performance.now() - c0;
    S.classifierMsTotal += S.classifierMs;
    S.classifierRuns += 1;
    pushSample(S.classifierSamples, S.classifierMs);
    return probs;
  };
}

// ---------------------------------------------------------------- rendering
const STATE_TEXT = {
  loading: "Loading models…",
  error: "Error",
  idle: "No video",
  no_person: "No person",
  buffering: "Warming up",
  pose_only: "Pose only",
  unknown: "Unknown / no exercise",
};
let barEls = {};
let repEls = {};
let lastLogRender = 0;
let renderedLogVersion = -1;
const repsText = (n) => `${n} rep${n === 1 ? "" : "s"}`;
const fmtMs = (v) => (v === null ? "–" : `${v < 10 ? v.toFixed(1) : Math.round(v)} ms`);
let shownPoseMs = null, shownClfMs = null;

function renderStatus() {
  const st = state(), shown = label();
  const ended = st === "idle" && S.fileEnded;
  const text = st === "exercise" ? shown : ended ? "Video ended" : STATE_TEXT[st] || st;
  el.status.textContent = text;
  el.status.dataset.state = st;
  el.label.dataset.state = st;
  el.label.textContent = st === "exercise" ? shown : st === "pose_only" ? "Pose only (classifier off)" : st === "buffering" ? "…" : text;
  let sub = "";
  const probs = engine && engine.probabilities, top = engine && engine.top, threshold = engine && engine.policy.threshold;
  if (st === "exercise" && top) sub = `${Math.round(probs[top] * 100)}% confident`;
  else if (st === "unknown" && top) sub = `best guess ${top} ${Math.round(probs[top] * 100)}% < ${Math.round(threshold * 100)}% threshold`;
  else if (st === "no_person") sub = "Step into view: the whole body should be visible";
  else if (st === "buffering" && engine) sub = `collecting frames: the model needs ${engine.policy.min_detected} with a person`;
  else if (ended) sub = "Its session log is below (CSV, JSON); choose another file or the camera";
  else if (st === "idle") sub = "Choose a camera or a video file";
  else if (st === "loading") sub = "Pose model and classifier are loading";
  if (S.paused && S.source) sub = `Paused${sub ? ` (${sub})` : ""}: press Resume to go on`;
  el.labelSub.textContent = sub;
  // The video overlay: the exercise of the bout being shown and the reps of that bout (not of the session).
  const bout = engine && !["idle", "loading", "error", "no_person"].includes(st) ? engine.bout : null;
  el.stageLabel.hidden = !bout;
  if (bout) el.stageLabel.textContent = `${bout.exercise} · ${repsText(bout.reps)}`;
}

function render() {
  renderStatus();
  // The bars show the model's current belief: none without a source (a video that ended) or before the first window.
  const probs = engine && !["idle", "loading", "error"].includes(state()) ? engine.probabilities : null;
  const top = probs && engine.top;
  for (const c of S.classes) {
    const b = barEls[c];
    const p = probs ? probs[c] : 0;
    b.fill.style.width = `${(p * 100).toFixed(1)}%`;
    b.value.textContent = probs ? `${Math.round(p * 100)}%` : "–";
    b.row.classList.toggle("lead", Boolean(probs) && c === top && p >= engine.policy.threshold);
  }
  el.fps.textContent = S.fps ? S.fps.toFixed(1) : "–";
  const ema = (prev, v) => (v === null ? prev : prev === null ? v : prev + 0.2 * (v - prev));
  shownPoseMs = ema(shownPoseMs, S.poseMs);
  if (classifier && S.classifierMs !== null) shownClfMs = ema(shownClfMs, S.classifierMs);
  el.poseMs.textContent = fmtMs(shownPoseMs);
  el.clfMs.textContent = classifier ? fmtMs(shownClfMs) : "off";
  const live = engine && !["idle", "loading", "error"].includes(state()); // a source is being processed
  const reps = engine ? engine.reps : {}, counting = live && engine.counting;
  for (const c of S.classes) {
    repEls[c].n.textContent = String(reps[c] || 0);
    repEls[c].row.classList.toggle("active", c === counting);
  }
  const counter = counting ? engine.counters[counting] : null;
  drawSignal(signalCtx, counter ? counter.active : null, REP_DEFAULTS.low, REP_DEFAULTS.high);
  if (counter) {
    const a = counter.active;
    const range = a.amplitude >= a.signal.minAmplitude ? "" : " (move more to count)";
    el.signalCaption.textContent = `${counting}: ${a.signal.label}${range}`;
  } else {
    el.signalCaption.textContent = !engine || engine.mode === "auto" ? "Reps count while an exercise is recognised." : "";
  }
  // The log at once when a bout starts, ends or gains a rep; its running duration twice a second.
  const now = performance.now();
  if (engine && (engine.log.version !== renderedLogVersion || now - lastLogRender > 500)) renderLog();
}

function renderLog() {
  if (!engine) return;
  lastLogRender = performance.now();
  renderedLogVersion = engine.log.version;
  const rows = engine.log.rows();
  const clock = (iso) => new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
  const position = (s) => {
    const tenths = Math.round(s * 10); // in the video: 1:05.3 (59.96 s is 1:00.0, not 0:60.0)
    return `${Math.floor(tenths / 600)}:${((tenths % 600) / 10).toFixed(1).padStart(4, "0")}`;
  };
  const time = (iso, video_s, s) => (iso ? clock(iso) : position(video_s ?? s));
  el.logBody.replaceChildren(
    ...rows
      .slice()
      .reverse()
      .map((r) => {
        const tr = document.createElement("tr");
        if (r.ongoing) tr.className = "ongoing";
        const cells = [r.exercise, time(r.start, r.video_start_s, r.start_s), r.ongoing ? "…" : time(r.end, r.video_end_s, r.end_s)];
        for (const v of [...cells, `${r.duration_s.toFixed(1)} s`, r.reps]) {
          const td = document.createElement("td");
          td.textContent = String(v);
          tr.append(td);
        }
        return tr;
      }),
  );
  el.logEmpty.hidden = rows.length > 0;
}

function buildClassViews() {
  el.bars.replaceChildren();
  el.reps.replaceChildren();
  barEls = {};
  repEls = {};
  for (const c of S.classes) {
    const row = document.createElement("div");
    row.className = "bar";
    const name = Object.assign(document.createElement("span"), { className: "bar-name", textContent: c, title: c });
    const track = Object.assign(document.createElement("span"), { className: "bar-track" });
    const fill = Object.assign(document.createElement("span"), { className: "bar-fill" });
    const mark = Object.assign(document.createElement("span"), { className: "bar-threshold", title: "threshold" });
    mark.style.left = `${engine.policy.threshold * 100}%`;
    track.append(fill, mark);
    const value = Object.assign(document.createElement("span"), { className: "bar-value", textContent: "–" });
    row.append(name, track, value);
    el.bars.append(row);
    barEls[c] = { row, fill, value };

    const li = document.createElement("li");
    const n = Object.assign(document.createElement("span"), { className: "n", textContent: "0" });
    li.append(Object.assign(document.createElement("span"), { className: "name", textContent: c, title: c }), n);
    el.reps.append(li);
    repEls[c] = { row: li, n };
    el.mode.append(new Option(`${c} (always)`, c));
  }
}

// ---------------------------------------------------------------- downloads
function stamp() {
  const d = new Date();
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}
function download(name, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = Object.assign(document.createElement("a"), { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 5000);
}
function sessionMeta() {
  const card = S.card || {};
  return {
    exported: new Date().toISOString(),
    model: { name: card.name || null, classes: S.classes, window_policy: card.window_policy || null, pose_bundle: card.pose_model ? card.pose_model.bundle : null },
    threshold: engine ? engine.policy.threshold : null,
    counting_mode: engine ? engine.mode : "auto",
  };
}

// ---------------------------------------------------------------- UI wiring
function bindUi() {
  el.useCamera.addEventListener("click", () => startCamera(el.camera.value || undefined));
  el.camera.addEventListener("change", () => startCamera(el.camera.value || undefined));
  el.file.addEventListener("change", () => {
    startFile(el.file.files[0]);
    el.file.value = "";
  });
  el.mirror.addEventListener("change", () => {
    mirrorTouched = true;
    applyMirror();
  });
  el.pause.addEventListener("click", () => {
    S.paused = !S.paused;
    el.pause.textContent = S.paused ? "Resume" : "Pause";
    if (S.source === "file") S.paused ? el.video.pause() : el.video.play().catch(() => {});
    if (S.paused) stopLoop();
    else startLoop();
    renderLog(); // what the CSV would hold now, not the table of up to half a second ago
  });
  el.mode.addEventListener("change", () => {
    engine && engine.setMode(el.mode.value);
  });
  const withLog = (fn) => () => engine && fn(engine.log);
  el.csv.addEventListener("click", withLog((log) => download(`musclevision-session-${stamp()}.csv`, log.toCSV(), "text/csv")));
  el.json.addEventListener("click", withLog((log) =>
    download(`musclevision-session-${stamp()}.json`, JSON.stringify(log.toJSON(sessionMeta()), null, 2) + "\n", "application/json"),
  ));
  el.clear.addEventListener("click", () => {
    engine && engine.clearLog();
    renderLog();
    render();
  });
  el.video.addEventListener("resize", fitStage);
  el.video.addEventListener("loadedmetadata", fitStage);
  el.video.addEventListener("ended", () => {
    // Before the models are ready nothing was analysed: main() plays the file again from its start.
    if (S.source !== "file" || !S.ready) return;
    if (busy) endPending = true; // the frame being processed finishes first, then the file does (step)
    else finishFile();
  });
  el.video.addEventListener("error", () => {
    if (S.source === "file") sourceFailed(`${S.sourceLabel} cannot be played by this browser; try an MP4 (H.264) or WebM file.`);
  });
  if (navigator.mediaDevices && navigator.mediaDevices.addEventListener)
    navigator.mediaDevices.addEventListener("devicechange", listCameras);
  el.mirror.checked = config.mirror ?? true;
  applyMirror();
}

async function fetchCard() {
  let response;
  try {
    response = await fetch(CARD_URL, { cache: "no-cache" });
  } catch (err) {
    throw new Error(`${CARD_URL} could not be fetched (${err.message}); is musclevision-serve running?`);
  }
  if (!response.ok) throw new Error(`${CARD_URL}: HTTP ${response.status}`);
  return validateCard(await response.json());
}

async function main() {
  bindUi();
  renderStatus();
  let card;
  try {
    card = await fetchCard();
  } catch (err) {
    fatal(`The model card could not be loaded: ${err.message}`);
    return;
  }
  S.card = card;
  S.classes = [...card.classes];
  const policy = card.window_policy;
  // The engine owns the card's window policy (URL parameters may override threshold and smoothing); the
  // classifier is handed to it once loaded.
  engine = new Engine(card, {
    threshold: config.threshold,
    smoothingS: config.smoothSeconds,
    log: { originMs: performance.timeOrigin },
  });
  if (card.training.warning) addWarning(`Model ${card.name}: ${card.training.warning}.`);
  buildClassViews();
  if (config.exercise !== "auto") {
    if (S.classes.includes(config.exercise)) engine.setMode(config.exercise);
    else addWarning(`exercise=${config.exercise} is not one of the model's classes (${S.classes.join(", ")}); counting the recognised exercise.`);
  }
  el.mode.value = engine.mode;
  el.modelInfo.textContent =
    `Model ${card.name || card.onnx}` +
    (card.training.members ? ` (ensemble of ${card.training.members.length})` : "") +
    `: ${S.classes.length} classes, window ${policy.window} frames at ${policy.fps} fps, ` +
    `pose ${card.pose_model.variant || card.pose_model.bundle}, threshold ${Math.round(engine.policy.threshold * 100)}%` +
    (card.calibration ? ` (calibrated, T ${card.calibration.temperature.toFixed(2)})` : "") +
    (config.classifier ? "" : " · classifier off");

  if (config.autostartCamera) startCamera();
  else {
    S.sourceError = null;
    stageMessage("Press \"Use camera\" or choose a video file.");
  }

  const pm = card.pose_model;
  const bundleUrl = "/models/pose/" + encodeURIComponent(pm.bundle);
  const onnxUrl = "/model/" + encodeURIComponent(card.onnx.split("/").pop());
  try {
    [pose, classifier] = await Promise.all([
      createPose({ bundleUrl, delegate: config.delegate, ...poseOptions(pm) }),
      config.classifier ? createClassifier(card, onnxUrl) : Promise.resolve(null),
    ]);
  } catch (err) {
    fatal(`A model failed to load: ${err.message || err}`);
    return;
  }
  engine.classify = classifier ? timedClassifier(classifier) : null;
  S.ready = true;
  if (S.source) {
    stageMessage("");
    S.state = "running";
    if (S.source === "file" && el.video.ended) {
      el.video.currentTime = 0; // a short file ended while the models loaded: analyse it from its start
      el.video.play().catch(() => {});
    }
    startLoop();
  } else {
    S.state = "idle";
  }
  renderStatus();
}

main().catch((err) => fatal(`Unexpected error: ${err.message || err}`));
