// Unit tests of the JavaScript SDK, without a WebAssembly host:
//     node --import ./plugins/sdk/js/tests/register.mjs --test plugins/sdk/js/tests/
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ClusterBatch, compareBytes, config, fail, log, parseConfig, parseJSON, stringify } from '../flotilla.js';
import { placementFilter } from '../placement-filter.js';
import { placementScorer } from '../placement-scorer.js';
import { Compliance, policyCheck } from '../policy-check.js';
import { rolloutStrategy, Status } from '../rollout-strategy.js';
import { manifestTransform, rejectCluster } from '../manifest-transform.js';
import { logged, objects } from './stubs/host.mjs';

const owner = { kind: 'Placement', namespace: 'default', name: 'p' };
const batch = {
  count: 3,
  names: 'a\nb\nc',
  labels: [{ key: 'region', values: ['eu', 'us'], index: new Uint32Array([1, 2, 0]) }],
  claims: [],
  resources: [{ name: 'cpu', capacityMilli: new BigInt64Array([8000n, -1n, 4000n]), allocatableMilli: new BigInt64Array([2000n, -1n, 4000n]) }],
  fields: [],
};

test('JSON keeps integers beyond 2^53 exact', () => {
  const v = parseJSON('{"a": 12345678901234567890, "b": 1.5, "c": [1, "x\\u00e9"]}');
  assert.equal(v.a, 12345678901234567890n);
  assert.equal(stringify(v), '{"a":12345678901234567890,"b":1.5,"c":[1,"xé"]}');
  assert.deepEqual(parseJSON('{"a": 1}'), { a: 1 });
  assert.throws(() => parseJSON('{"a": 12345678901234567890,}'), SyntaxError);
});

test('configuration errors name the field', () => {
  const spec = config.object({
    key: config.string({ minLength: 1 }),
    values: config.array(config.string(), { default: [] }),
    limits: config.map(config.integer({ minimum: 0 }), { default: {} }),
    note: config.string({ optional: true }),
  });
  const ok = parseConfig(spec, '{"key": "region", "limits": {"cpu": 4000}}');
  assert.equal(ok.key, 'region');
  assert.deepEqual(ok.values, []);
  assert.equal(ok.limits.get('cpu'), 4000n);
  assert.equal(ok.note, undefined);
  const err = (text) => {
    try {
      parseConfig(spec, text);
    } catch (e) {
      return e.message;
    }
    return 'ok';
  };
  assert.equal(err('{}'), 'invalid configuration: missing field `key`');
  assert.match(err('{"key": "a", "kye": 1}'), /^invalid configuration: unknown field `kye`, expected one of `key`/);
  assert.equal(err('{"key": ""}'), 'invalid configuration: key must not be empty');
  assert.equal(err('{"key": "a", "values": [1]}'), 'invalid configuration: values[0] must be a string, not an integer');
  assert.equal(err('{"key": "a", "limits": {"cpu": -1}}'), 'invalid configuration: limits.cpu must be at least 0');
  assert.equal(err('{"key": "a", "limits": {"cpu": 1.5}}'), 'invalid configuration: limits.cpu must be an integer, not a number');
  assert.match(err('{'), /^invalid configuration: not JSON/);
  assert.deepEqual(spec.jsonSchema().required, ['key']);
});

test('batch views', () => {
  const b = new ClusterBatch(batch);
  assert.deepEqual(b.names, ['a', 'b', 'c']);
  assert.deepEqual(b.map((c) => c.label('region')), ['eu', 'us', undefined]);
  assert.deepEqual(b.map((c) => c.allocatable('cpu')), [2000n, undefined, 4000n]);
  assert.equal(b.at(0).capacity('memory'), undefined);
  assert.deepEqual(b.at(1).labels, { region: 'us' });
  assert.equal(new ClusterBatch({ ...batch, count: 0, names: '' }).names.length, 0);
});

test('filter results deduplicate reasons; errors become the err string', () => {
  const plugin = placementFilter({
    name: 'f', version: '0.1.0', summary: 's',
    config: config.object({ region: config.string() }),
    validate: (cfg) => { if (cfg.region === 'bad') fail('region must not be bad'); },
    reads: (cfg) => ({ labels: [cfg.region] }),
    filter: (cfg, clusters) => clusters.map((c) => { log.info('saw', c.name); return c.label('region') === cfg.region ? null : 'other region'; }),
  });
  const d = plugin.describe();
  assert.equal(JSON.parse(d.configSchema).required[0], 'region');
  assert.deepEqual(plugin.validateConfig('{"region": "eu"}').labels, ['eu']);
  assert.throws(() => plugin.validateConfig('{"region": "bad"}'), (e) => e === 'region must not be bad');
  const r = plugin.filter('{"region": "eu"}', owner, batch);
  assert.deepEqual(r.reasons, ['other region']);
  assert.deepEqual(r.verdicts, [0, 1, 1]);
  assert.deepEqual(logged.at(-1), ['info', 'saw c']);
});

test('scorer, check, rollout and transform wrap results', () => {
  const scorer = placementScorer({ name: 's', version: '0.1.0', summary: 's', score: (_c, clusters) => clusters.map((_x, i) => BigInt(i) - 1n) });
  assert.deepEqual(scorer.score('{}', owner, batch).scores, [-1, 0, 1]);

  objects.push({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { namespace: 'ns', name: 'x' } });
  const check = policyCheck({
    name: 'c', version: '0.1.0', summary: 's',
    check: (_cfg, cluster, { spoke }) => ({
      compliance: spoke.get('v1', 'ConfigMap', 'ns', 'x') ? Compliance.NonCompliant : Compliance.Compliant,
      message: cluster.name,
      violations: [{ object: { apiVersion: 'v1', kind: 'ConfigMap', namespace: 'ns', name: 'x' }, message: 'm', remediation: { data: { a: 1n } } }],
    }),
  });
  const c = check.check('{}', owner, { name: 'spoke', labels: [], claims: [], resources: [], fields: undefined });
  assert.equal(c.compliance, 'non-compliant');
  assert.equal(c.violations[0].remediation, '{"data":{"a":1}}');
  assert.equal(c.violations[0].object.namespace, 'ns');

  const strategy = rolloutStrategy({
    name: 'r', version: '0.1.0', summary: 's',
    decide: (_cfg, clusters, { now }) => ({ proceed: clusters.filter((x) => x.status === Status.ToApply), message: String(now) }),
  });
  const cl = (name, status) => ({ cluster: { name, labels: [], claims: [], resources: [] }, groupIndex: 0, groupName: '', status });
  const d = strategy.decide('{}', owner, 5n, [cl('a', 'to-apply'), cl('b', 'succeeded')]);
  assert.deepEqual(d, { proceed: ['a'], timedOut: [], failed: [], stop: false, recheckAfterMs: undefined, message: '5' });

  const transform = manifestTransform({
    name: 't', version: '0.1.0', summary: 's',
    transformCluster: (_cfg, manifests, cluster) => {
      if (cluster.name === 'b') rejectCluster('not b');
      manifests[0].n = cluster.name;
      return manifests;
    },
  });
  const t = transform.transform('{}', owner, ['{"n": null, "big": 12345678901234567890}'], batch);
  assert.deepEqual(t, [
    { tag: 'ok', val: ['{"n":"a","big":12345678901234567890}'] },
    { tag: 'err', val: 'not b' },
    { tag: 'ok', val: ['{"n":"c","big":12345678901234567890}'] },
  ]);
});

test('byte-wise order', () => {
  assert.deepEqual(['b', 'B', 'a', '\u{1F600}', '\uFFFF'].sort(compareBytes), ['B', 'a', 'b', '\uFFFF', '\u{1F600}']);
});
