// allowed-registries: a cluster complies when every Deployment's images come from allowed
// registries; with rewriteTo, each violation proposes a merge patch (spec:
// plugins/examples/README.md).

import { compareBytes, config, fail } from '../flotilla-plugin-sdk/flotilla.js';
import { Compliance, policyCheck } from '../flotilla-plugin-sdk/policy-check.js';

const Config = config.object({
  registries: config.array(config.string(), { description: 'Allowed registry prefixes.' }),
  namespace: config.string({ optional: true, description: 'Check only Deployments in this namespace.' }),
  rewriteTo: config.string({ optional: true, description: 'The registry that remediation moves disallowed images to.' }),
});

const LISTS = ['initContainers', 'containers'];

/** The image without its registry host (`docker.io/library/redis:7` is `library/redis:7`). */
function repository(image) {
  const slash = image.indexOf('/');
  if (slash < 0) return image;
  const host = image.slice(0, slash);
  return host.includes('.') || host.includes(':') || host === 'localhost' ? image.slice(slash + 1) : image;
}

const podSpec = (d) => d?.spec?.template?.spec ?? {};
const containers = (spec, list) => (Array.isArray(spec[list]) ? spec[list] : []);

export const check = policyCheck({
  name: 'allowed-registries',
  version: '0.1.0',
  summary: "A cluster complies when every Deployment's images come from allowed registries.",
  config: Config,
  validate(cfg) {
    if (cfg.registries.length === 0) fail('registries must name at least one registry');
  },
  reads: () => ({ kinds: [{ apiVersion: 'apps/v1', kind: 'Deployment' }] }),

  check(cfg, _cluster, { spoke }) {
    const allowed = (image) => cfg.registries.some((r) => image.startsWith(`${r}/`));
    const deployments = spoke.list('apps/v1', 'Deployment', { namespace: cfg.namespace });
    const ns = (d) => d.metadata?.namespace ?? '';
    const name = (d) => d.metadata?.name ?? '';
    deployments.sort((a, b) => compareBytes(ns(a), ns(b)) || compareBytes(name(a), name(b)));

    const violations = [];
    for (const d of deployments) {
      const spec = podSpec(d);
      const bad = [];
      for (const list of LISTS) {
        for (const c of containers(spec, list)) {
          const image = c?.image;
          if (typeof image === 'string' && !allowed(image) && !bad.includes(image)) bad.push(image);
        }
      }
      if (bad.length === 0) continue;
      let remediation;
      if (cfg.rewriteTo !== undefined) {
        const patched = {};
        for (const list of LISTS) {
          const items = containers(spec, list);
          if (!items.some((c) => typeof c?.image === 'string' && !allowed(c.image))) continue;
          patched[list] = items.map((c) =>
            typeof c?.image === 'string' && !allowed(c.image) ? { ...c, image: `${cfg.rewriteTo}/${repository(c.image)}` } : c,
          );
        }
        remediation = { spec: { template: { spec: patched } } };
      }
      violations.push({
        object: { apiVersion: 'apps/v1', kind: 'Deployment', namespace: ns(d), name: name(d) },
        message: `images not from an allowed registry: ${bad.join(', ')}`,
        remediation,
      });
    }
    const n = deployments.length;
    return violations.length > 0
      ? {
          compliance: Compliance.NonCompliant,
          message: `${violations.length} of ${n} deployment(s) use images outside the allowed registries`,
          violations,
        }
      : { compliance: Compliance.Compliant, message: `all ${n} deployment(s) use allowed registries`, violations: [] };
  },
});
