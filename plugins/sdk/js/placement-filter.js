// The placement-filter world: `export const filter = placementFilter({...})`.
//
//   filter(cfg, clusters, owner) returns one entry per cluster, in order: null (or
//   undefined) keeps the cluster, a string removes it for that reason. It may instead
//   return {verdicts: [...], requeueAfterMs} to ask the host to run the cycle again.

import { ClusterBatch, common, configOf, guard, ownerOf } from './flotilla.js';

export function placementFilter(plugin) {
  return {
    ...common(plugin),
    filter: (text, owner, batch) =>
      guard(() => {
        const cfg = configOf(plugin, text);
        const clusters = new ClusterBatch(batch);
        let out = plugin.filter(cfg, clusters, ownerOf(owner));
        let requeueAfterMs;
        if (!Array.isArray(out)) {
          requeueAfterMs = out.requeueAfterMs;
          out = out.verdicts;
        }
        if (out.length !== clusters.length) {
          throw new Error(`filter returned ${out.length} verdict(s) for ${clusters.length} cluster(s)`);
        }
        // Each distinct reason once; verdict 0 keeps, i + 1 removes for reasons[i].
        const reasons = [];
        const seen = new Map();
        const verdicts = new Uint32Array(out.length);
        for (let i = 0; i < out.length; i++) {
          const reason = out[i];
          if (reason === null || reason === undefined || reason === false) continue;
          let at = seen.get(reason);
          if (at === undefined) {
            at = reasons.length + 1;
            reasons.push(String(reason));
            seen.set(reason, at);
          }
          verdicts[i] = at;
        }
        return {
          reasons,
          verdicts: Array.from(verdicts),
          requeueAfterMs: requeueAfterMs === undefined ? undefined : BigInt(requeueAfterMs),
        };
      }),
  };
}
