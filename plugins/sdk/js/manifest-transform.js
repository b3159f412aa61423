// The manifest-transform world: `export const transform = manifestTransform({...})`.
//
//   transformCluster(cfg, manifests, cluster, {owner, clusters}) is called once per
//   cluster, in order, with its own deep copy of the manifests (parsed objects, free to
//   change), and returns that cluster's manifests. `rejectCluster(message)` inside it means
//   that cluster cannot have the work; `fail(message)` (or any other error) fails the call.

import { ClusterBatch, common, configOf, guard, ownerOf, parseJSON, PluginError, stringify } from './flotilla.js';

class ClusterRejection extends Error {}

/** Refuses the work for the current cluster only, with `message`. */
export function rejectCluster(message) {
  throw new ClusterRejection(message);
}

function copy(v) {
  // Manifests are plain JSON (BigInt for integers beyond 2^53).
  if (Array.isArray(v)) return v.map(copy);
  if (v !== null && typeof v === 'object') {
    const out = {};
    for (const k of Object.keys(v)) out[k] = copy(v[k]);
    return out;
  }
  return v;
}

export function manifestTransform(plugin) {
  return {
    ...common(plugin),
    transform: (text, owner, manifestTexts, batch) =>
      guard(() => {
        const cfg = configOf(plugin, text);
        const manifests = manifestTexts.map((m, i) => {
          try {
            return parseJSON(m);
          } catch (e) {
            throw new PluginError(`manifest ${i} is not JSON: ${e.message}`);
          }
        });
        const clusters = new ClusterBatch(batch);
        const ctx = { owner: ownerOf(owner), clusters };
        const out = [];
        for (const cluster of clusters) {
          try {
            const result = plugin.transformCluster(cfg, copy(manifests), cluster, ctx);
            out.push({ tag: 'ok', val: result.map((m) => (typeof m === 'string' ? m : stringify(m))) });
          } catch (e) {
            if (e instanceof ClusterRejection) out.push({ tag: 'err', val: e.message });
            else throw e;
          }
        }
        return out;
      }),
  };
}
