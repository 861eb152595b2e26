// pose.js helpers that run without a browser: MediaPipe's console noise filter.
import { test } from "node:test";
import assert from "node:assert/strict";

import { quietMediaPipeLogs } from "../../src/musclevision/web/static/js/pose.js";

test("MediaPipe's native info lines and start-up warnings are dropped from the console; its errors and the page's own pass", () => {
  const seen = [];
  const fake = {};
  for (const level of ["log", "info", "warn", "error", "debug"]) fake[level] = (...args) => seen.push([level, args.join(" ")]);
  quietMediaPipeLogs(fake);
  quietMediaPipeLogs(fake); // twice is once
  fake.log("I1201 04:44:20.092000 2136208 gl_context.cc:407] GL version: 3.0 (OpenGL ES 3.0)");
  fake.warn("W1201 04:44:20.473999 2136208 landmark_projection_calculator.cc:81] Using NORM_RECT without IMAGE_DIMENSIONS");
  fake.error("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.");
  fake.log("Graph successfully started running.");
  fake.error("E1201 04:44:20.5 2136208 calculator_graph.cc:900] INTERNAL: a real failure");
  fake.error("[musclevision]", "pose landmarker could not start");
  fake.warn("W1201 04:44:20.335000 2136208 inference_feedback_manager.cc:121] Feedback manager requires a model");
  fake.warn("W1201 04:44:20.095000 2136208 gl_context.cc:1118] OpenGL error checking is disabled");
  fake.warn("W1201 04:44:21.000000 2136208 gpu_delegate.cc:50] GPU delegate unavailable, falling back to CPU");
  fake.warn("W1201 is not a glog line");
  assert.deepEqual(seen, [
    ["error", "E1201 04:44:20.5 2136208 calculator_graph.cc:900] INTERNAL: a real failure"],
    ["error", "[musclevision] pose landmarker could not start"],
    ["warn", "W1201 04:44:21.000000 2136208 gpu_delegate.cc:50] GPU delegate unavailable, falling back to CPU"],
    ["warn", "W1201 is not a glog line"],
  ]);
});
