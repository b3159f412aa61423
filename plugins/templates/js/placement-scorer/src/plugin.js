// A placement scorer: ranks clusters by the allocatable amount of one resource, from -100
// for a cluster without it to 100 for the one with the most.
//
//   {"resource": "cpu"}
//
// Quantities are milli-units as BigInt (they may exceed 2^53); undefined when a cluster
// does not report the resource.

import { config } from '../flotilla-plugin-sdk/flotilla.js';
import { placementScorer } from '../flotilla-plugin-sdk/placement-scorer.js';

const Config = config.object({
  resource: config.string({
    minLength: 1,
    default: 'cpu',
    description: 'The resource to rank by, as in ManagedCluster.status.allocatable.',
  }),
});

export const scorer = placementScorer({
  name: '{{name}}',
  version: '0.1.0',
  summary: 'Ranks clusters by the allocatable amount of one resource.',
  config: Config,
  reads: (cfg) => ({ resources: [cfg.resource] }),

  // One score per cluster, in order, within [-100, 100].
  score(cfg, clusters) {
    const allocatable = clusters.map((c) => c.allocatable(cfg.resource));
    const max = allocatable.reduce((m, a) => (a !== undefined && a > m ? a : m), -1n);
    return allocatable.map((a) => (a === undefined || max <= 0n ? -100 : Number((a * 200n) / max - 100n)));
  },
});
