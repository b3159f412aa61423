// claims-transform: per-cluster image registry and replica count from cluster claims
// (spec: plugins/examples/README.md).

import { config, fail, isObject } from '../flotilla-plugin-sdk/flotilla.js';
import { manifestTransform, rejectCluster } from '../flotilla-plugin-sdk/manifest-transform.js';

const Config = config.object({
  registryClaim: config.string({ optional: true, description: "The claim whose value is the cluster's registry host." }),
  replicasClaim: config.string({ optional: true, description: "The claim whose value is the cluster's replica count." }),
});

const WORKLOADS = new Set(['Deployment', 'StatefulSet', 'DaemonSet']);
const SCALABLE = new Set(['Deployment', 'StatefulSet']);

/** The image without its registry host (`docker.io/library/redis:7` is `library/redis:7`). */
function repository(image) {
  const slash = image.indexOf('/');
  if (slash < 0) return image;
  const host = image.slice(0, slash);
  return host.includes('.') || host.includes(':') || host === 'localhost' ? image.slice(slash + 1) : image;
}

/** The pod spec of a Pod or a workload, or undefined for other kinds. */
function podSpec(m) {
  if (m.kind === 'Pod') return m.spec;
  if (WORKLOADS.has(m.kind)) return m.spec?.template?.spec;
  return undefined;
}

export const transform = manifestTransform({
  name: 'claims-transform',
  version: '0.1.0',
  summary: 'Per-cluster image registry and replica count from cluster claims.',
  config: Config,
  validate(cfg) {
    if (cfg.registryClaim === undefined && cfg.replicasClaim === undefined) fail('set registryClaim or replicasClaim');
  },
  reads: (cfg) => ({ claims: [cfg.registryClaim, cfg.replicasClaim].filter((c) => c !== undefined) }),

  transformCluster(cfg, manifests, cluster) {
    const registry = cfg.registryClaim === undefined ? undefined : cluster.claim(cfg.registryClaim);
    let replicas;
    if (cfg.replicasClaim !== undefined) {
      const value = cluster.claim(cfg.replicasClaim);
      if (value !== undefined) {
        if (!/^[0-9]+$/.test(value)) rejectCluster(`claim ${cfg.replicasClaim} value ${value} is not a replica count`);
        replicas = BigInt(value); // written as a JSON integer, exact beyond 2^53
      }
    }
    for (const m of manifests) {
      if (!isObject(m)) continue;
      const spec = podSpec(m);
      if (registry !== undefined && isObject(spec)) {
        for (const list of ['initContainers', 'containers']) {
          if (!Array.isArray(spec[list])) continue;
          for (const c of spec[list]) {
            if (isObject(c) && typeof c.image === 'string') c.image = `${registry}/${repository(c.image)}`;
          }
        }
      }
      if (replicas !== undefined && SCALABLE.has(m.kind)) {
        if (!isObject(m.spec)) m.spec = {};
        m.spec.replicas = Number.isSafeInteger(Number(replicas)) ? Number(replicas) : replicas;
      }
    }
    return manifests;
  },
});
