// The policy-check world: `export const check = policyCheck({...})`.
//
//   check(cfg, cluster, {spoke, owner}) returns {compliance, message, violations}:
//   compliance is Compliance.Compliant, .NonCompliant or .Pending; each violation is
//   {object: {apiVersion, kind, namespace, name}, message, remediation}, where remediation
//   is a JSON merge patch as an object (or undefined). `spoke.list(...)` and `spoke.get(...)`
//   read objects of the kinds `reads(cfg).kinds` declares, as parsed JSON.

import { getObject, listObjects } from 'flotilla:policy-check/spoke@0.1.0';
import { Cluster, common, configOf, guard, ownerOf, parseJSON, PluginError, stringify } from './flotilla.js';

export const Compliance = Object.freeze({
  Compliant: 'compliant',
  NonCompliant: 'non-compliant',
  Pending: 'pending',
});

function spokeError(e) {
  // The host's err string arrives as a thrown ComponentError whose payload is the string.
  return new PluginError(typeof e?.payload === 'string' ? e.payload : e instanceof Error ? e.message : String(e));
}

/** Read-only access to the spoke's objects. */
export const spoke = {
  /** Objects of a kind, parsed: `spoke.list('apps/v1', 'Deployment', {namespace, labelSelector})`. */
  list(apiVersion, kind, { namespace, labelSelector } = {}) {
    let items;
    try {
      items = listObjects({ apiVersion, kind }, namespace ?? undefined, labelSelector ?? undefined);
    } catch (e) {
      throw spokeError(e);
    }
    return items.map((text) => parseJSON(text));
  },
  /** One object, parsed, or null when it does not exist. */
  get(apiVersion, kind, namespace, name) {
    let text;
    try {
      text = getObject({ apiVersion, kind }, namespace ?? undefined, name);
    } catch (e) {
      throw spokeError(e);
    }
    return text === undefined || text === null ? null : parseJSON(text);
  },
};

function violation(v) {
  const o = v.object;
  return {
    object: o
      ? {
          kind: { apiVersion: o.apiVersion, kind: o.kind },
          namespace: o.namespace === undefined || o.namespace === null || o.namespace === '' ? undefined : o.namespace,
          name: o.name,
        }
      : undefined,
    message: String(v.message),
    remediation:
      v.remediation === undefined || v.remediation === null
        ? undefined
        : typeof v.remediation === 'string'
          ? v.remediation
          : stringify(v.remediation),
  };
}

export function policyCheck(plugin) {
  return {
    ...common(plugin),
    check: (text, owner, cluster) =>
      guard(() => {
        const cfg = configOf(plugin, text);
        const out = plugin.check(cfg, new Cluster(cluster), { spoke, owner: ownerOf(owner) });
        if (!Object.values(Compliance).includes(out.compliance)) {
          throw new Error(`check returned compliance ${out.compliance}; use Compliance.*`);
        }
        return {
          compliance: out.compliance,
          message: String(out.message ?? ''),
          violations: (out.violations ?? []).map(violation),
        };
      }),
  };
}
