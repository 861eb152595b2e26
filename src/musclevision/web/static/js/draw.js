// Drawing: the skeleton overlay on the camera view and the rep-signal sparkline.

import { SKELETON } from "./generated/contract.js";

const MIN_VISIBILITY = 0.5;

/** Draw `frame` (Float32Array(132) of normalized landmarks) onto a canvas sized like the video: the skeleton's
 *  bones (musclevision.pose.skeleton.BONES, MediaPipe's POSE_CONNECTIONS) and landmarks. */
export function drawSkeleton(ctx, frame, highlight = []) {
  const { width: w, height: h } = ctx.canvas;
  ctx.clearRect(0, 0, w, h);
  if (!frame) return;
  const scale = Math.max(1, Math.min(w, h) / 240);
  const visible = (i) => (Number.isFinite(frame[i * 4 + 3]) ? frame[i * 4 + 3] : 1) >= MIN_VISIBILITY;
  ctx.lineCap = "round";
  ctx.lineWidth = 2.5 * scale;
  for (const [a, b] of SKELETON.bones) {
    ctx.strokeStyle = visible(a) && visible(b) ? "rgba(255,255,255,0.9)" : "rgba(255,255,255,0.3)";
    ctx.beginPath();
    ctx.moveTo(frame[a * 4] * w, frame[a * 4 + 1] * h);
    ctx.lineTo(frame[b * 4] * w, frame[b * 4 + 1] * h);
    ctx.stroke();
  }
  const hl = new Set(highlight);
  for (let i = 0; i < SKELETON.count; i++) {
    const r = (hl.has(i) ? 4.5 : 3) * scale;
    ctx.fillStyle = hl.has(i) ? "#ffb020" : visible(i) ? "#28d7a0" : "rgba(40,215,160,0.35)";
    ctx.beginPath();
    ctx.arc(frame[i * 4] * w, frame[i * 4 + 1] * h, r, 0, 2 * Math.PI);
    ctx.fill();
  }
}

/** Sparkline of the rep counter's smoothed signal with its low/high thresholds. */
export function drawSignal(ctx, counter, low, high) {
  const { width: w, height: h } = ctx.canvas;
  ctx.clearRect(0, 0, w, h);
  if (!counter || counter.history.length < 2) return;
  const hist = counter.history;
  const t0 = hist[hist.length - 1][0] - counter.opt.spanSeconds * 1000;
  const lo = counter.min, hi = counter.max;
  const range = Math.max(hi - lo, counter.signal.minAmplitude);
  const base = hi - lo < counter.signal.minAmplitude ? (hi + lo) / 2 - range / 2 : lo;
  const x = (t) => ((t - t0) / (counter.opt.spanSeconds * 1000)) * w;
  const y = (v) => h - 3 - ((v - base) / range) * (h - 6);
  if (hi - lo >= counter.signal.minAmplitude) {
    ctx.fillStyle = "rgba(255,176,32,0.15)";
    ctx.fillRect(0, y(lo + high * (hi - lo)), w, y(lo + low * (hi - lo)) - y(lo + high * (hi - lo)));
  }
  ctx.strokeStyle = "#28d7a0";
  ctx.lineWidth = 2;
  ctx.beginPath();
  hist.forEach(([t, v], i) => (i ? ctx.lineTo(x(t), y(v)) : ctx.moveTo(x(t), y(v))));
  ctx.stroke();
}
