// A policy check: a cluster complies when one object exists on it.
//
//   {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "kube-public", "name": "cluster-info"}
//
// The agent calls `check` once per evaluation on its own cluster; `spoke` reads objects of
// the kinds that `reads` declares, and only those.

import { config } from '../flotilla-plugin-sdk/flotilla.js';
import { Compliance, policyCheck } from '../flotilla-plugin-sdk/policy-check.js';

const Config = config.object({
  apiVersion: config.string({ minLength: 1 }),
  kind: config.string({ minLength: 1 }),
  namespace: config.string({ optional: true, description: 'Absent for a cluster-scoped kind.' }),
  name: config.string({ minLength: 1 }),
});

/** `ConfigMap kube-public/cluster-info`, for messages. */
const display = (cfg) => (cfg.namespace === undefined ? `${cfg.kind} ${cfg.name}` : `${cfg.kind} ${cfg.namespace}/${cfg.name}`);

export const check = policyCheck({
  name: '{{name}}',
  version: '0.1.0',
  summary: 'A cluster complies when one object exists on it.',
  config: Config,
  reads: (cfg) => ({ kinds: [{ apiVersion: cfg.apiVersion, kind: cfg.kind }] }),

  check(cfg, cluster, { spoke }) {
    const found = spoke.get(cfg.apiVersion, cfg.kind, cfg.namespace, cfg.name);
    if (found !== null) {
      return { compliance: Compliance.Compliant, message: `${display(cfg)} exists on ${cluster.name}`, violations: [] };
    }
    return {
      compliance: Compliance.NonCompliant,
      message: `${display(cfg)} is missing on ${cluster.name}`,
      violations: [
        {
          object: { apiVersion: cfg.apiVersion, kind: cfg.kind, namespace: cfg.namespace, name: cfg.name },
          message: `${display(cfg)} does not exist`,
          // A JSON merge patch (an object) that would fix the object, applied only when the
          // Policy is enforced; a missing object cannot be patched into existence.
          remediation: undefined,
        },
      ],
    };
  },
});
