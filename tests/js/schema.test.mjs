// The page's JSON Schema validator (web/static/js/schema.js) on small schemas: each keyword accepts and refuses.
import { test } from "node:test";
import assert from "node:assert/strict";
import { validate } from "../../src/musclevision/web/static/js/schema.js";

const ok = (schema, value) => assert.equal(validate(schema, value), null);
const bad = (schema, value, pattern) => assert.match(validate(schema, value) ?? "accepted", pattern);

test("types: integer is a number, booleans are not numbers, null is its own type", () => {
  ok({ type: "number" }, 3);
  ok({ type: "integer" }, 3);
  bad({ type: "integer" }, 3.5, /type integer/);
  bad({ type: "number" }, true, /type number/);
  bad({ type: "object" }, null, /type object/);
  ok({ anyOf: [{ type: "string" }, { type: "null" }] }, null);
});

test("numbers: inclusive and exclusive bounds", () => {
  ok({ minimum: 0, maximum: 1 }, 1);
  bad({ exclusiveMaximum: 1 }, 1, /< 1/);
  bad({ exclusiveMinimum: 0 }, 0, /> 0/);
});

test("strings: patterns are anchored by the schema, lengths count code points", () => {
  ok({ pattern: "^[a-z]+\\.onnx$" }, "best.onnx");
  bad({ pattern: "^[a-z]+\\.onnx$" }, "best.onnx\n", /must match/);
  ok({ maxLength: 1 }, "😀");
  bad({ minLength: 1 }, "", /at least 1/);
});

test("arrays: sizes, distinct items, contains", () => {
  bad({ uniqueItems: true }, ["a", "a"], /distinct/);
  bad({ minItems: 1 }, [], /at least 1/);
  ok({ contains: { const: "landmarks" } }, ["world", "landmarks"]);
  bad({ contains: { const: "landmarks" } }, ["world"], /must contain/);
  bad({ items: { type: "string" } }, ["a", 2], /^1: must be of type string/);
});

test("objects: required keys, forbidden extra keys, references, the failing path", () => {
  const schema = {
    $defs: { Policy: { type: "object", properties: { fps: { type: "number", exclusiveMinimum: 0 } }, required: ["fps"], additionalProperties: false } },
    type: "object",
    properties: { policy: { $ref: "#/$defs/Policy" } },
    required: ["policy"],
  };
  ok(schema, { policy: { fps: 25 } });
  bad(schema, {}, /'policy' is required/);
  bad(schema, { policy: { fps: 0 } }, /^policy\.fps: must be > 0/);
  bad(schema, { policy: { fps: 25, fsp: 1 } }, /^policy\.fsp: is not allowed/);
  bad({ $ref: "#/$defs/Nope" }, 1, /unknown schema reference/);
  bad({ format: "date" }, "x", /not supported/);
});
