// least-loaded-scorer: prefers the clusters with the largest free share of one resource
// (spec: plugins/examples/README.md).

import { config } from '../flotilla-plugin-sdk/flotilla.js';
import { placementScorer } from '../flotilla-plugin-sdk/placement-scorer.js';

const Config = config.object({
  resource: config.string({ minLength: 1, default: 'cpu', description: 'The resource to score.' }),
});

export const scorer = placementScorer({
  name: 'least-loaded-scorer',
  version: '0.1.0',
  summary: 'Prefers the clusters with the largest free share of one resource.',
  config: Config,
  reads: (cfg) => ({ resources: [cfg.resource] }),

  score(cfg, clusters) {
    const column = clusters.resourceColumn(cfg.resource);
    return clusters.map((_cluster, i) => {
      const a = column.allocatable(i);
      const c = column.capacity(i);
      if (a === undefined || c === undefined || c === 0n) return -100;
      const score = (200n * a) / c - 100n; // BigInt division truncates, as floor for a, c >= 0
      return score > 100n ? 100 : Number(score);
    });
  },
});
