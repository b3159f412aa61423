// The placement-scorer world: `export const scorer = placementScorer({...})`.
//
//   score(cfg, clusters, owner) returns one score per cluster, in order, each an integer
//   (number or BigInt) within [-100, 100]; or {scores: [...], requeueAfterMs}.

import { ClusterBatch, common, configOf, guard, ownerOf } from './flotilla.js';

export function placementScorer(plugin) {
  return {
    ...common(plugin),
    score: (text, owner, batch) =>
      guard(() => {
        const cfg = configOf(plugin, text);
        const clusters = new ClusterBatch(batch);
        let out = plugin.score(cfg, clusters, ownerOf(owner));
        let requeueAfterMs;
        if (!Array.isArray(out)) {
          requeueAfterMs = out.requeueAfterMs;
          out = out.scores;
        }
        if (out.length !== clusters.length) {
          throw new Error(`score returned ${out.length} score(s) for ${clusters.length} cluster(s)`);
        }
        return {
          scores: out.map((s) => Number(s)),
          requeueAfterMs: requeueAfterMs === undefined ? undefined : BigInt(requeueAfterMs),
        };
      }),
  };
}
