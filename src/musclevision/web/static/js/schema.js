// A small JSON Schema validator: exactly the keywords the model card's generated schema uses
// (musclevision.card.card_schema(); a Python test fails if the schema grows a keyword not handled
// here). No eval or code generation, so it runs under the page's Content-Security-Policy.

const IGNORED = new Set(["title", "description", "default", "$defs", "$schema"]);
export const KEYWORDS = new Set([
  ...IGNORED, "$ref", "type", "enum", "const", "properties", "required", "additionalProperties", "items", "minItems",
  "maxItems", "uniqueItems", "contains", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength",
  "maxLength", "pattern", "anyOf",
]);

function typeOf(v) {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
  return typeof v; // string | boolean | object
}

function hasType(v, type) {
  const t = typeOf(v);
  return t === type || (type === "number" && t === "integer");
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

/** The first problem of `value` against `schema` as "path: message", or null when it is valid. */
export function validate(schema, value, root = schema, path = "") {
  const at = (msg) => `${path || "(top level)"}: ${msg}`;
  if (schema.$ref) {
    const name = schema.$ref.replace(/^#\/\$defs\//, "");
    if (!root.$defs || !root.$defs[name]) return at(`unknown schema reference ${schema.$ref}`);
    return validate(root.$defs[name], value, root, path);
  }
  for (const key of Object.keys(schema)) if (!KEYWORDS.has(key)) return at(`schema keyword ${key} is not supported`);
  if (schema.anyOf) {
    const errors = schema.anyOf.map((s) => validate(s, value, root, path));
    if (errors.every((e) => e !== null)) return errors[0];
  }
  if (schema.type && !hasType(value, schema.type)) return at(`must be of type ${schema.type}, got ${typeOf(value)}`);
  if (schema.const !== undefined && !same(value, schema.const)) return at(`must be ${JSON.stringify(schema.const)}`);
  if (schema.enum && !schema.enum.some((e) => same(e, value))) return at(`must be one of ${JSON.stringify(schema.enum)}`);
  if (typeof value === "number") {
    if (schema.minimum !== undefined && !(value >= schema.minimum)) return at(`must be >= ${schema.minimum}`);
    if (schema.maximum !== undefined && !(value <= schema.maximum)) return at(`must be <= ${schema.maximum}`);
    if (schema.exclusiveMinimum !== undefined && !(value > schema.exclusiveMinimum)) return at(`must be > ${schema.exclusiveMinimum}`);
    if (schema.exclusiveMaximum !== undefined && !(value < schema.exclusiveMaximum)) return at(`must be < ${schema.exclusiveMaximum}`);
  }
  if (typeof value === "string") {
    const length = [...value].length; // code points, as Python counts
    if (schema.minLength !== undefined && length < schema.minLength) return at(`must have at least ${schema.minLength} characters`);
    if (schema.maxLength !== undefined && length > schema.maxLength) return at(`must have at most ${schema.maxLength} characters`);
    if (schema.pattern !== undefined && !new RegExp(schema.pattern, "u").test(value)) return at(`must match ${schema.pattern}`);
  }
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems) return at(`must have at least ${schema.minItems} items`);
    if (schema.maxItems !== undefined && value.length > schema.maxItems) return at(`must have at most ${schema.maxItems} items`);
    if (schema.uniqueItems && new Set(value.map((v) => JSON.stringify(v))).size !== value.length) return at("items must be distinct");
    if (schema.items)
      for (let i = 0; i < value.length; i++) {
        const err = validate(schema.items, value[i], root, `${path}.${i}`.replace(/^\./, ""));
        if (err) return err;
      }
    if (schema.contains && !value.some((v) => validate(schema.contains, v, root, path) === null))
      return at(`must contain an item matching ${JSON.stringify(schema.contains)}`);
  }
  if (typeOf(value) === "object") {
    for (const key of schema.required || []) if (!(key in value)) return at(`'${key}' is required`);
    const props = schema.properties || {};
    for (const [key, v] of Object.entries(value)) {
      const sub = path ? `${path}.${key}` : key;
      if (props[key]) {
        const err = validate(props[key], v, root, sub);
        if (err) return err;
      } else if (schema.additionalProperties === false) {
        return `${sub}: is not allowed here`;
      } else if (typeof schema.additionalProperties === "object") {
        const err = validate(schema.additionalProperties, v, root, sub);
        if (err) return err;
      }
    }
  }
  return null;
}
