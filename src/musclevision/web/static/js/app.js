// MuscleVision live demo: camera (or video file) -> PoseLandmarker -> ONNX classifier -> reps + session log.
//
// Everything runs in this page; every file comes from the serving origin (musclevision-serve).
// URL parameters (all optional):
//   classifier=off      pose only (no ONNX model; for pose-only FPS measurements)
//   exercise=<Class>    count reps of this exercise whenever a person is visible, instead of
//                       only while it is recognised (the default, exercise=auto)
//   threshold=<0..1>    "unknown / no exercise" threshold (default: the card's window_policy.threshold)
//   smooth=<seconds>    time constant of the probability smoothing (default: window_policy.smoothing_s, 0 = raw)
//   mirror=0|1          mirror the view (display only; default: on for cameras, off for files)
//   camera=off          do not start the camera on load
//   loop=0|1            loop video files (default 1)
//   delegate=GPU        MediaPipe GPU delegate (default CPU)
// Read-only stats for tests/benchmarks: window.musclevision (see `api` below).

import { createClassifier, FrameWindow, usesWorld, validateCard } from "./classifier.js";
import { drawSignal, drawSkeleton } from "./draw.js";
import { createPose, poseOptions } from "./pose.js";
import { DEFAULTS as REP_DEFAULTS, RepCounter } from "./reps.js";
import { SessionLog } from "./session.js";

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
  loop: flag("loop", true),
  noPersonSeconds: 0.4,
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
const S = {
  ready: false,
  state: "loading", // loading | error | idle | no_person | buffering | pose_only | unknown | exercise
  label: null,
  error: null,
  sourceError: null,
  warnings: [],
  card: null,
  classes: [],
  threshold: null, // window policy (card), unless the URL overrides it
  smoothSeconds: null,
  probabilities: null, // smoothed, what the decision and the bars use
  raw: null, // last classifier output
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
  reps: {},
  mode: "auto",
  counting: null,
  source: null, // "camera" | "file" | null
  sourceLabel: "",
  paused: false,
};
let pose = null;
let classifier = null;
let frames = null;
const counters = {};
const log = new SessionLog();
let frameTimes = [];
let noPersonSince = null;
let seenPerson = false;
let lastClassifierT = null;

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
  state: () => S.state,
  label: () => S.label,
  error: () => S.error,
  sourceError: () => S.sourceError,
  warnings: () => [...S.warnings],
  classes: () => [...S.classes],
  window: () => (S.card ? S.card.window_policy.window : null),
  minDetected: () => (S.card ? S.card.window_policy.min_detected : null),
  threshold: () => S.threshold,
  classifierEnabled: () => config.classifier,
  probabilities: () => copy(S.probabilities),
  raw: () => copy(S.raw),
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
  reps: () => copy(S.reps),
  mode: () => S.mode,
  counting: () => S.counting,
  source: () => S.source,
  sourceLabel: () => S.sourceLabel,
  paused: () => S.paused,
  log: () => log.rows(),
};
for (const [key, get] of Object.entries(exposed)) Object.defineProperty(api, key, { get, enumerable: true });
window.musclevision = Object.freeze(api);

// ---------------------------------------------------------------- messages
function showBanner(message, level = "error") {
  el.banner.textContent = message;
  el.banner.dataset.level = level;
  el.banner.hidden = false;
}
function addWarning(message) {
  S.warnings.push(message);
  showBanner(S.warnings.join("\n"), "warn");
}
/** After a source starts: drop a camera/file message, keep start-up warnings. */
function clearSourceMessage() {
  if (S.error) return;
  if (S.warnings.length) showBanner(S.warnings.join("\n"), "warn");
  else el.banner.hidden = true;
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
  stopLoop();
  overlayCtx.clearRect(0, 0, el.overlay.width, el.overlay.height);
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
  showBanner(message, "warn");
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
  clearSourceMessage();
  frames && frames.clear();
  S.probabilities = null;
  S.raw = null;
  lastClassifierT = null;
  noPersonSince = null;
  seenPerson = false;
  frameTimes = [];
  S.paused = false;
  el.pause.disabled = false;
  el.pause.textContent = "Pause";
  if (!mirrorTouched) el.mirror.checked = S.source === "camera";
  applyMirror();
  fitStage();
  if (S.ready) {
    stageMessage("");
    S.state = "no_person";
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
  try {
    await processFrame();
  } catch (err) {
    stopLoop();
    fatal(`Processing failed: ${err.message || err}`);
  } finally {
    busy = false;
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

  if (det) {
    S.personFrames += 1;
    seenPerson = true;
    noPersonSince = null;
  } else if (noPersonSince === null) {
    noPersonSince = t1;
  }
  frames.push(det ? det.image : null, det ? det.world : null, t0);

  // The card's window policy: classify only windows with enough slots holding a person (as evaluation scores them).
  if (classifier && frames.full && frames.presentCount() >= S.card.window_policy.min_detected) {
    const c0 = performance.now();
    const probs = await classifier.run(frames);
    const c1 = performance.now();
    S.classifierMs = c1 - c0;
    S.classifierMsTotal += S.classifierMs;
    S.classifierRuns += 1;
    pushSample(S.classifierSamples, S.classifierMs);
    S.raw = Object.fromEntries(S.classes.map((c, i) => [c, probs[i]]));
    smoothProbabilities(c1);
  } else if (frames.full) {
    // Too few frames with a person for the model: its output would mean nothing, do not let it steer the smoothing.
    S.probabilities = null;
    lastClassifierT = null;
  }

  decide(t1, det);
  countAndLog(t1, det);
  drawSkeleton(overlayCtx, det && det.image, pose.connections, highlightFor(S.counting));
  render();
}

/** Exponential smoothing of S.raw over time into S.probabilities (what the page shows and decides on). */
function smoothProbabilities(t) {
  const prev = S.probabilities;
  if (!prev || S.smoothSeconds <= 0 || lastClassifierT === null) {
    S.probabilities = { ...S.raw };
  } else {
    const a = 1 - Math.exp(-(t - lastClassifierT) / 1000 / S.smoothSeconds);
    for (const c of S.classes) prev[c] += a * (S.raw[c] - prev[c]);
  }
  lastClassifierT = t;
}

function topClass() {
  let best = null;
  for (const c of S.classes) if (!best || S.probabilities[c] > S.probabilities[best]) best = c;
  return best;
}

function decide(t, det) {
  const gone = noPersonSince !== null && (!seenPerson || t - noPersonSince >= config.noPersonSeconds * 1000);
  if (gone) return setState("no_person", null);
  if (!det && ["exercise", "unknown", "pose_only", "buffering"].includes(S.state)) return; // brief dropout: hold
  if (!classifier) return setState("pose_only", null);
  if (!S.probabilities) return setState("buffering", null);
  const top = topClass();
  if (S.probabilities[top] >= S.threshold) setState("exercise", top);
  else setState("unknown", null);
}

function setState(state, label) {
  S.state = state;
  S.label = label;
}

function countAndLog(t, det) {
  let counting = null;
  if (S.mode === "auto") counting = S.state === "exercise" ? S.label : null;
  else if (S.state !== "no_person" && det) counting = S.mode;
  S.counting = counting;
  log.update(counting, t);
  if (!counting) return;
  const counter = (counters[counting] ||= new RepCounter(counting));
  const aspect = el.video.videoWidth / el.video.videoHeight || 1;
  if (counter.update(det ? det.image : null, t, aspect)) {
    S.reps[counting] = (S.reps[counting] || 0) + 1;
    log.addRep(counting);
  }
}

function highlightFor(exercise) {
  const counter = exercise && counters[exercise];
  return counter ? counter.active.signal.landmarks : [];
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
const fmtMs = (v) => (v === null ? "–" : `${v < 10 ? v.toFixed(1) : Math.round(v)} ms`);
let shownPoseMs = null, shownClfMs = null;

function renderStatus() {
  const text = S.state === "exercise" ? S.label : STATE_TEXT[S.state] || S.state;
  el.status.textContent = text;
  el.status.dataset.state = S.state;
  el.label.dataset.state = S.state;
  el.label.textContent =
    S.state === "exercise" ? S.label : S.state === "pose_only" ? "Pose only (classifier off)" : S.state === "buffering" ? "…" : text;
  let sub = "";
  const top = S.probabilities && topClass();
  if (S.state === "exercise" && top) sub = `${Math.round(S.probabilities[top] * 100)}% confident`;
  else if (S.state === "unknown" && top)
    sub = `best guess ${top} ${Math.round(S.probabilities[top] * 100)}% < ${Math.round(S.threshold * 100)}% threshold`;
  else if (S.state === "no_person") sub = "Step into view: the whole body should be visible";
  else if (S.state === "buffering" && frames) sub = `collecting ${Math.min(frames.count, frames.size)}/${frames.size} frames`;
  else if (S.state === "idle") sub = "Choose a camera or a video file";
  else if (S.state === "loading") sub = "Pose model and classifier are loading";
  el.labelSub.textContent = sub;
  const showStage = S.state === "exercise" || (S.counting && S.mode !== "auto");
  el.stageLabel.hidden = !showStage;
  if (showStage) {
    const ex = S.counting || S.label;
    el.stageLabel.textContent = ex ? `${ex} · ${S.reps[ex] || 0} reps` : "";
  }
}

function render() {
  renderStatus();
  if (S.probabilities) {
    const top = topClass();
    for (const c of S.classes) {
      const b = barEls[c];
      const p = S.probabilities[c];
      b.fill.style.width = `${(p * 100).toFixed(1)}%`;
      b.value.textContent = `${Math.round(p * 100)}%`;
      b.row.classList.toggle("lead", c === top && p >= S.threshold);
    }
  }
  el.fps.textContent = S.fps ? S.fps.toFixed(1) : "–";
  const ema = (prev, v) => (v === null ? prev : prev === null ? v : prev + 0.2 * (v - prev));
  shownPoseMs = ema(shownPoseMs, S.poseMs);
  if (classifier && S.classifierMs !== null) shownClfMs = ema(shownClfMs, S.classifierMs);
  el.poseMs.textContent = fmtMs(shownPoseMs);
  el.clfMs.textContent = classifier ? fmtMs(shownClfMs) : "off";
  for (const c of S.classes) {
    repEls[c].n.textContent = String(S.reps[c] || 0);
    repEls[c].row.classList.toggle("active", c === S.counting);
  }
  const counter = counters[S.counting] || null;
  drawSignal(signalCtx, S.counting && counter ? counter.active : null, REP_DEFAULTS.low, REP_DEFAULTS.high);
  if (S.counting && counter) {
    const a = counter.active;
    const range = a.amplitude >= a.signal.minAmplitude ? "" : " (move more to count)";
    el.signalCaption.textContent = `${S.counting}: ${a.signal.label}${range}`;
  } else {
    el.signalCaption.textContent = S.mode === "auto" ? "Reps count while an exercise is recognised." : "";
  }
  const now = performance.now();
  if (now - lastLogRender > 500) {
    lastLogRender = now;
    renderLog();
  }
}

function renderLog() {
  const rows = log.rows();
  const time = (iso) => new Date(iso).toLocaleTimeString();
  el.logBody.replaceChildren(
    ...rows
      .slice()
      .reverse()
      .map((r) => {
        const tr = document.createElement("tr");
        if (r.ongoing) tr.className = "ongoing";
        for (const v of [r.exercise, time(r.start), r.ongoing ? "…" : time(r.end), `${r.duration_s.toFixed(1)} s`, r.reps]) {
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
    mark.style.left = `${S.threshold * 100}%`;
    track.append(fill, mark);
    const value = Object.assign(document.createElement("span"), { className: "bar-value", textContent: "–" });
    row.append(name, track, value);
    el.bars.append(row);
    barEls[c] = { row, fill, value };

    const li = document.createElement("li");
    const n = Object.assign(document.createElement("span"), { className: "n", textContent: "0" });
    li.append(Object.assign(document.createElement("span"), { textContent: c }), n);
    el.reps.append(li);
    repEls[c] = { row: li, n };
    S.reps[c] = 0;
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
    model: { name: card.name || null, classes: S.classes, window: card.window_policy ? card.window_policy.window : null, pose_bundle: card.pose_model ? card.pose_model.bundle : null },
    threshold: S.threshold,
    counting_mode: S.mode,
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
  });
  el.mode.addEventListener("change", () => {
    S.mode = el.mode.value;
  });
  el.csv.addEventListener("click", () => download(`musclevision-session-${stamp()}.csv`, log.toCSV(), "text/csv"));
  el.json.addEventListener("click", () =>
    download(`musclevision-session-${stamp()}.json`, JSON.stringify(log.toJSON(sessionMeta()), null, 2) + "\n", "application/json"),
  );
  el.clear.addEventListener("click", () => {
    log.clear();
    for (const c of S.classes) S.reps[c] = 0;
    for (const k of Object.keys(counters)) delete counters[k];
    renderLog();
    render();
  });
  el.video.addEventListener("resize", fitStage);
  el.video.addEventListener("loadedmetadata", fitStage);
  el.video.addEventListener("ended", () => {
    if (S.source === "file") {
      S.state = "idle";
      stageMessage("End of video. Choose another file or the camera.");
      renderStatus();
    }
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
  S.threshold = config.threshold ?? policy.threshold;
  S.smoothSeconds = Math.max(0, config.smoothSeconds ?? policy.smoothing_s);
  frames = new FrameWindow(policy.window, usesWorld(card), policy.fps);
  if (card.training.warning) addWarning(`Model ${card.name}: ${card.training.warning}.`);
  buildClassViews();
  if (config.exercise !== "auto") {
    if (S.classes.includes(config.exercise)) S.mode = config.exercise;
    else addWarning(`exercise=${config.exercise} is not one of the model's classes (${S.classes.join(", ")}); counting the recognised exercise.`);
  }
  el.mode.value = S.mode;
  el.modelInfo.textContent =
    `Model ${card.name || card.onnx}: ${S.classes.length} classes, window ${policy.window} frames at ${policy.fps} fps, ` +
    `pose ${card.pose_model.variant || card.pose_model.bundle}, threshold ${Math.round(S.threshold * 100)}%` +
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
  S.ready = true;
  if (S.source) {
    stageMessage("");
    S.state = "no_person";
    startLoop();
  } else {
    S.state = "idle";
  }
  renderStatus();
}

main().catch((err) => fatal(`Unexpected error: ${err.message || err}`));
