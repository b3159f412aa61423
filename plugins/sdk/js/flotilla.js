// Flotilla plugin SDK for JavaScript (componentize-js): the parts every world shares.
//
// A plugin imports this module and one world module (`./placement-filter.js`, ...) and never
// the raw bindings: configuration comes in as a typed, validated object, clusters as views
// with label, claim and resource lookups, and whatever the plugin returns is turned into the
// WIT records the host expects. See README.md beside this file.

import { log as hostLog } from 'flotilla:types/log@0.1.0';

// ---------------------------------------------------------------------------------------
// Logging: lines land in the hub's or agent's log, tagged with the plugin's name.

function emit(level, parts) {
  const message = parts.map((p) => (typeof p === 'string' ? p : stringify(p))).join(' ');
  hostLog(level, message);
}

/** `log.info('kept', n, 'clusters')`: arguments are joined by spaces (non-strings as JSON). */
export const log = {
  trace: (...parts) => emit('trace', parts),
  debug: (...parts) => emit('debug', parts),
  info: (...parts) => emit('info', parts),
  warn: (...parts) => emit('warn', parts),
  error: (...parts) => emit('error', parts),
};

// ---------------------------------------------------------------------------------------
// Errors.

/** An error whose message is the plugin's answer (`err(message)`) to the host. */
export class PluginError extends Error {
  constructor(message) {
    super(message);
    this.name = 'PluginError';
  }
}

/** Fails the whole call (or `validate-config`) with `message`. */
export function fail(message) {
  throw new PluginError(message);
}

/** The `err` string for anything thrown by plugin code. */
export function errorMessage(e) {
  if (e instanceof PluginError) return e.message;
  if (typeof e === 'string') return e;
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return String(e);
}

/** Runs `fn` and turns anything it throws into the string the host takes as `err`. */
export function guard(fn) {
  try {
    return fn();
  } catch (e) {
    // componentize-js maps a thrown string to `err(string)`.
    throw errorMessage(e);
  }
}

// ---------------------------------------------------------------------------------------
// JSON that keeps 64-bit integers exact: integers beyond Number.MAX_SAFE_INTEGER parse as
// BigInt, and BigInt values serialize as plain JSON integers.

const LONG_DIGITS = /\d{16,}/;

/** JSON.parse, except that integers too large for a `number` come back as `BigInt`. */
export function parseJSON(text) {
  if (!LONG_DIGITS.test(text)) return JSON.parse(text);
  return new JsonParser(text).document();
}

class JsonParser {
  constructor(text) {
    this.s = text;
    this.i = 0;
  }
  document() {
    const v = this.value();
    this.ws();
    if (this.i !== this.s.length) this.error('trailing characters');
    return v;
  }
  error(what) {
    throw new SyntaxError(`${what} at position ${this.i}`);
  }
  ws() {
    const s = this.s;
    while (this.i < s.length) {
      const c = s.charCodeAt(this.i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) this.i++;
      else break;
    }
  }
  value() {
    this.ws();
    const c = this.s[this.i];
    if (c === '{') return this.object();
    if (c === '[') return this.array();
    if (c === '"') return this.string();
    if (c === '-' || (c >= '0' && c <= '9')) return this.number();
    for (const [word, v] of [['true', true], ['false', false], ['null', null]]) {
      if (this.s.startsWith(word, this.i)) {
        this.i += word.length;
        return v;
      }
    }
    this.error('unexpected character');
  }
  object() {
    this.i++;
    const out = {};
    this.ws();
    if (this.s[this.i] === '}') {
      this.i++;
      return out;
    }
    for (;;) {
      this.ws();
      if (this.s[this.i] !== '"') this.error('expected a key');
      const key = this.string();
      this.ws();
      if (this.s[this.i++] !== ':') this.error("expected ':'");
      out[key] = this.value();
      this.ws();
      const c = this.s[this.i++];
      if (c === '}') return out;
      if (c !== ',') this.error("expected ',' or '}'");
    }
  }
  array() {
    this.i++;
    const out = [];
    this.ws();
    if (this.s[this.i] === ']') {
      this.i++;
      return out;
    }
    for (;;) {
      out.push(this.value());
      this.ws();
      const c = this.s[this.i++];
      if (c === ']') return out;
      if (c !== ',') this.error("expected ',' or ']'");
    }
  }
  string() {
    // Find the closing quote, then let JSON.parse decode the escapes.
    const start = this.i;
    this.i++;
    while (this.i < this.s.length) {
      const c = this.s[this.i];
      if (c === '\\') this.i += 2;
      else if (c === '"') {
        this.i++;
        return JSON.parse(this.s.slice(start, this.i));
      } else this.i++;
    }
    this.error('unterminated string');
  }
  number() {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(this.s.slice(this.i, this.i + 400));
    if (!m) this.error('invalid number');
    this.i += m[0].length;
    if (m[2] === undefined && m[3] === undefined) {
      const n = Number(m[0]);
      return Number.isSafeInteger(n) ? n : BigInt(m[0]);
    }
    return Number(m[0]);
  }
}

const BIG = '\u0001flotilla-bigint:';

/** JSON.stringify that writes `BigInt` values as JSON integers. */
export function stringify(value) {
  let big = false;
  const text = JSON.stringify(value, (_k, v) => {
    if (typeof v === 'bigint') {
      big = true;
      return BIG + v.toString();
    }
    return v;
  });
  if (!big) return text;
  return text.replace(/"\\u0001flotilla-bigint:(-?\d+)"/g, '$1');
}

// ---------------------------------------------------------------------------------------
// Configuration: declare it once, get validation with clear errors and the JSON Schema that
// `describe()` returns.
//
//   const Config = config.object({
//     regions: config.array(config.string(), { minItems: 1 }),
//     regionLabel: config.string({ default: 'region', minLength: 1 }),
//   });
//
// Every error names the field by its path (`minAllocatableMilli.cpu`); unknown fields are
// refused with "unknown field `name`".

class Spec {
  constructor(schema, check, opts = {}) {
    this.schema = schema;
    this.check = check;
    this.opts = opts;
    if (opts.description !== undefined) this.schema.description = opts.description;
    if (opts.default !== undefined) this.schema.default = jsonDefault(opts.default);
  }
  /** Whether a missing value is allowed (it has a default, or is optional). */
  get optional() {
    return this.opts.optional === true || this.opts.default !== undefined;
  }
  jsonSchema() {
    return this.schema;
  }
}

function jsonDefault(v) {
  return typeof v === 'bigint' ? Number(v) : v;
}

function where(path) {
  return path === '' ? 'the configuration' : path;
}

function configError(path, what) {
  return new PluginError(`invalid configuration: ${where(path)} ${what}`);
}

function kind(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'bigint') return 'an integer';
  if (typeof v === 'number') return Number.isInteger(v) ? 'an integer' : 'a number';
  if (typeof v === 'object') return 'an object';
  return `a ${typeof v}`;
}

export const config = {
  /** A string; `minLength`, `enum` (allowed values). */
  string(opts = {}) {
    const schema = { type: 'string' };
    if (opts.minLength !== undefined) schema.minLength = opts.minLength;
    if (opts.enum !== undefined) schema.enum = opts.enum;
    return new Spec(schema, (v, path) => {
      if (typeof v !== 'string') throw configError(path, `must be a string, not ${kind(v)}`);
      if (opts.minLength !== undefined && v.length < opts.minLength) {
        throw configError(path, opts.minLength === 1 ? 'must not be empty' : `must have at least ${opts.minLength} characters`);
      }
      if (opts.enum !== undefined && !opts.enum.includes(v)) {
        throw configError(path, `must be one of ${opts.enum.join(', ')}`);
      }
      return v;
    }, opts);
  },
  /** An integer, as a `BigInt` (64-bit exact); `minimum`, `maximum`. */
  integer(opts = {}) {
    const schema = { type: 'integer' };
    if (opts.minimum !== undefined) schema.minimum = Number(opts.minimum);
    if (opts.maximum !== undefined) schema.maximum = Number(opts.maximum);
    return new Spec(schema, (v, path) => {
      if (!(typeof v === 'bigint' || (typeof v === 'number' && Number.isInteger(v)))) {
        throw configError(path, `must be an integer, not ${kind(v)}`);
      }
      const n = BigInt(v);
      if (n < -(2n ** 63n) || n >= 2n ** 63n) throw configError(path, 'must fit in 64 bits');
      if (opts.minimum !== undefined && n < BigInt(opts.minimum)) {
        throw configError(path, `must be at least ${opts.minimum}`);
      }
      if (opts.maximum !== undefined && n > BigInt(opts.maximum)) {
        throw configError(path, `must be at most ${opts.maximum}`);
      }
      return n;
    }, { ...opts, default: opts.default === undefined ? undefined : BigInt(opts.default) });
  },
  /** A number (float). */
  number(opts = {}) {
    return new Spec({ type: 'number' }, (v, path) => {
      if (typeof v !== 'number' && typeof v !== 'bigint') throw configError(path, `must be a number, not ${kind(v)}`);
      return Number(v);
    }, opts);
  },
  boolean(opts = {}) {
    return new Spec({ type: 'boolean' }, (v, path) => {
      if (typeof v !== 'boolean') throw configError(path, `must be true or false, not ${kind(v)}`);
      return v;
    }, opts);
  },
  /** A list of `items`; `minItems`. */
  array(items, opts = {}) {
    const schema = { type: 'array', items: items.jsonSchema() };
    if (opts.minItems !== undefined) schema.minItems = opts.minItems;
    return new Spec(schema, (v, path) => {
      if (!Array.isArray(v)) throw configError(path, `must be a list, not ${kind(v)}`);
      if (opts.minItems !== undefined && v.length < opts.minItems) {
        throw configError(path, `must have at least ${opts.minItems} item(s)`);
      }
      return v.map((x, i) => items.check(x, `${path}[${i}]`));
    }, opts);
  },
  /** An object with any keys, each value an `values`; returned as a `Map` in key order. */
  map(values, opts = {}) {
    const schema = { type: 'object', additionalProperties: values.jsonSchema() };
    return new Spec(schema, (v, path) => {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) {
        throw configError(path, `must be an object, not ${kind(v)}`);
      }
      const out = new Map();
      for (const key of Object.keys(v)) out.set(key, values.check(v[key], path === '' ? key : `${path}.${key}`));
      return out;
    }, opts);
  },
  /**
   * An object with the given fields (each a spec; a field without `default` and without
   * `optional: true` is required). Unknown fields are refused.
   */
  object(fields, opts = {}) {
    const schema = { type: 'object', additionalProperties: false, properties: {} };
    const required = [];
    for (const [name, spec] of Object.entries(fields)) {
      schema.properties[name] = spec.jsonSchema();
      if (!spec.optional) required.push(name);
    }
    if (required.length > 0) schema.required = required;
    const names = Object.keys(fields);
    return new Spec(schema, (v, path) => {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) {
        throw configError(path, `must be an object, not ${kind(v)}`);
      }
      for (const key of Object.keys(v)) {
        if (!(key in fields)) {
          const inside = path === '' ? '' : ` in ${path}`;
          const expected = names.length === 0 ? 'no fields' : `one of ${names.map((n) => `\`${n}\``).join(', ')}`;
          throw new PluginError(`invalid configuration: unknown field \`${key}\`${inside}, expected ${expected}`);
        }
      }
      const out = {};
      for (const [name, spec] of Object.entries(fields)) {
        const sub = path === '' ? name : `${path}.${name}`;
        if (v[name] === undefined || (v[name] === null && spec.optional)) {
          if (spec.opts.default !== undefined) out[name] = spec.check(cloneDefault(spec.opts.default), sub);
          else if (spec.optional) out[name] = undefined;
          else throw new PluginError(`invalid configuration: missing field \`${sub}\``);
        } else {
          out[name] = spec.check(v[name], sub);
        }
      }
      return out;
    }, opts);
  },
};

function cloneDefault(v) {
  return v !== null && typeof v === 'object' ? JSON.parse(JSON.stringify(v)) : v;
}

/**
 * Parses the configuration text (a JSON document) against `spec`, then runs `validate(cfg)`
 * when given, for checks across fields (throw with `fail(message)`).
 */
export function parseConfig(spec, text, validate) {
  let raw;
  try {
    raw = parseJSON(text);
  } catch (e) {
    throw new PluginError(`invalid configuration: not JSON: ${e.message}`);
  }
  const cfg = spec.check(raw, '');
  if (validate) validate(cfg);
  return cfg;
}

// ---------------------------------------------------------------------------------------
// What a plugin reads.

/** A complete `reads` record from a partial one: `{labels: ['region']}`. */
export function reads(partial = {}) {
  const list = (v) => (v === undefined ? [] : [...v]);
  return {
    labels: list(partial.labels),
    claims: list(partial.claims),
    resources: list(partial.resources),
    fields: list(partial.fields),
    kinds: list(partial.kinds).map((k) => ({ apiVersion: k.apiVersion, kind: k.kind })),
  };
}

// ---------------------------------------------------------------------------------------
// Clusters.

/** Milli-units from the host (-1 or absent: not reported) as a BigInt, or undefined. */
function milli(v) {
  if (v === undefined || v === null) return undefined;
  const n = BigInt(v);
  return n < 0n ? undefined : n;
}

/** One cluster from a list (policy checks, rollouts): the `cluster` record as a view. */
export class Cluster {
  constructor(raw) {
    this.raw = raw;
    /** The ManagedCluster's name. */
    this.name = raw.name;
  }
  /** The label's value, or undefined when the cluster lacks it (or it was not declared). */
  label(key) {
    for (const [k, v] of this.raw.labels) if (k === key) return v;
    return undefined;
  }
  /** The claim's value, or undefined. */
  claim(name) {
    for (const [k, v] of this.raw.claims) if (k === name) return v;
    return undefined;
  }
  /** Labels as a plain object. */
  get labels() {
    return Object.fromEntries(this.raw.labels);
  }
  /** Claims as a plain object. */
  get claims() {
    return Object.fromEntries(this.raw.claims);
  }
  #resource(name) {
    return this.raw.resources.find((r) => r.name === name);
  }
  /** Allocatable milli-units of a resource as a BigInt, or undefined when not reported. */
  allocatable(name) {
    return milli(this.#resource(name)?.allocatableMilli);
  }
  /** Capacity milli-units as a BigInt, or undefined. */
  capacity(name) {
    return milli(this.#resource(name)?.capacityMilli);
  }
  /** The declared fields, as an object from field path to value (undefined when none). */
  get fields() {
    return this.raw.fields === undefined || this.raw.fields === null ? undefined : parseJSON(this.raw.fields);
  }
}

/** A label or claim column of a batch. */
export class StringColumn {
  constructor(raw) {
    this.key = raw.key;
    /** The distinct values. */
    this.values = raw.values;
    /** Per cluster: 0 when absent, else 1 + index into `values`. */
    this.index = raw.index;
  }
  /** Cluster `i`'s value, or undefined. */
  get(i) {
    const x = this.index[i];
    return x === 0 ? undefined : this.values[x - 1];
  }
  has(i) {
    return this.index[i] !== 0;
  }
}

const ABSENT_STRING = { get: () => undefined, has: () => false, values: [], key: '' };

/** A resource column of a batch; quantities as BigInt, undefined when not reported. */
export class ResourceColumn {
  constructor(raw) {
    this.name = raw.name;
    this.capacityMilli = raw.capacityMilli;
    this.allocatableMilli = raw.allocatableMilli;
  }
  capacity(i) {
    return milli(this.capacityMilli[i]);
  }
  allocatable(i) {
    return milli(this.allocatableMilli[i]);
  }
}

const ABSENT_RESOURCE = { capacity: () => undefined, allocatable: () => undefined };

/**
 * Many clusters, by column (filters, scorers, transforms), with a per-cluster view:
 * `for (const c of clusters) c.label('region')`, or `clusters.labelColumn('region')` to
 * decide once per distinct value.
 */
export class ClusterBatch {
  constructor(raw) {
    this.raw = raw;
    /** The number of clusters. */
    this.length = raw.count;
    this._names = undefined;
    this._labels = new Map(raw.labels.map((c) => [c.key, new StringColumn(c)]));
    this._claims = new Map(raw.claims.map((c) => [c.key, new StringColumn(c)]));
    this._resources = new Map(raw.resources.map((c) => [c.name, new ResourceColumn(c)]));
  }
  /** The cluster names, in order. */
  get names() {
    if (this._names === undefined) this._names = this.length === 0 ? [] : this.raw.names.split('\n', this.length);
    return this._names;
  }
  name(i) {
    return this.names[i];
  }
  /** The label's column; a column without values when no cluster has the label. */
  labelColumn(key) {
    return this._labels.get(key) ?? ABSENT_STRING;
  }
  claimColumn(name) {
    return this._claims.get(name) ?? ABSENT_STRING;
  }
  /** The resource's column; one that reports nothing when no cluster reports it. */
  resourceColumn(name) {
    return this._resources.get(name) ?? ABSENT_RESOURCE;
  }
  label(i, key) {
    return this.labelColumn(key).get(i);
  }
  claim(i, name) {
    return this.claimColumn(name).get(i);
  }
  allocatable(i, name) {
    return this.resourceColumn(name).allocatable(i);
  }
  capacity(i, name) {
    return this.resourceColumn(name).capacity(i);
  }
  fields(i) {
    const f = this.raw.fields[i];
    return f === undefined ? undefined : parseJSON(f);
  }
  /** Cluster `i` as a view. */
  at(i) {
    return new BatchCluster(this, i);
  }
  *[Symbol.iterator]() {
    for (let i = 0; i < this.length; i++) yield new BatchCluster(this, i);
  }
  /** `fn(cluster, i)` for every cluster, in order. */
  map(fn) {
    const out = new Array(this.length);
    for (let i = 0; i < this.length; i++) out[i] = fn(new BatchCluster(this, i), i);
    return out;
  }
}

/** One cluster of a batch. */
export class BatchCluster {
  constructor(batch, index) {
    this.batch = batch;
    this.index = index;
  }
  get name() {
    return this.batch.name(this.index);
  }
  label(key) {
    return this.batch.label(this.index, key);
  }
  claim(name) {
    return this.batch.claim(this.index, name);
  }
  get labels() {
    const out = {};
    for (const [k, col] of this.batch._labels) if (col.has(this.index)) out[k] = col.get(this.index);
    return out;
  }
  get claims() {
    const out = {};
    for (const [k, col] of this.batch._claims) if (col.has(this.index)) out[k] = col.get(this.index);
    return out;
  }
  allocatable(name) {
    return this.batch.allocatable(this.index, name);
  }
  capacity(name) {
    return this.batch.capacity(this.index, name);
  }
  get fields() {
    return this.batch.fields(this.index);
  }
}

// ---------------------------------------------------------------------------------------
// describe() for every world.

/**
 * The `description` record from a plugin definition: `name`, `version`, `summary`, `config`
 * (a spec from `config.*`; its JSON Schema is returned), optional `describeReads`.
 */
export function description(plugin) {
  for (const field of ['name', 'version', 'summary']) {
    if (typeof plugin[field] !== 'string') throw new Error(`the plugin definition needs a string ${field}`);
  }
  return {
    name: plugin.name,
    version: plugin.version,
    summary: plugin.summary,
    reads: reads(plugin.describeReads),
    configSchema: plugin.config
      ? JSON.stringify({ $schema: 'https://json-schema.org/draft/2020-12/schema', ...plugin.config.jsonSchema() })
      : undefined,
  };
}

/** Parses the configuration text of a call as the plugin defines it. */
export function configOf(plugin, text) {
  if (!plugin.config) return parseJSON(text);
  return parseConfig(plugin.config, text, plugin.validate);
}

/** The common exports: `describe` and `validateConfig`. */
export function common(plugin) {
  return {
    describe: () => guard(() => description(plugin)),
    validateConfig: (text) =>
      guard(() => {
        const cfg = configOf(plugin, text);
        return reads(plugin.reads ? plugin.reads(cfg) : {});
      }),
  };
}

/** The owner-ref record as a plain object `{kind, namespace, name}`. */
export function ownerOf(raw) {
  return { kind: raw.kind, namespace: raw.namespace, name: raw.name };
}

// ---------------------------------------------------------------------------------------
// Small helpers the worlds share.

/** Compares strings byte-wise as UTF-8 (code point order), for sorts that match other languages. */
const SURROGATE = /[\uD800-\uDFFF]/;

export function compareBytes(a, b) {
  if (a === b) return 0;
  // UTF-16 code unit order is code point order unless a surrogate pair is involved.
  if (!SURROGATE.test(a) && !SURROGATE.test(b)) return a < b ? -1 : 1;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i);
    const y = b.codePointAt(i);
    if (x !== y) return x < y ? -1 : 1;
    if (x > 0xffff) i++;
  }
  return a.length < b.length ? -1 : a.length > b.length ? 1 : 0;
}

/** Whether `v` is a JSON object (not null, not an array). */
export function isObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
