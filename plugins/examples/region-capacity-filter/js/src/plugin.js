// region-capacity-filter: keeps clusters in allowed regions with enough allocatable
// resources (spec: plugins/examples/README.md).

import { compareBytes, config, fail } from '../flotilla-plugin-sdk/flotilla.js';
import { placementFilter } from '../flotilla-plugin-sdk/placement-filter.js';

const Config = config.object({
  regions: config.array(config.string(), { description: 'Allowed values of the region label.' }),
  regionLabel: config.string({ default: 'region', description: "The label that holds a cluster's region." }),
  minAllocatableMilli: config.map(config.integer(), {
    default: {},
    description: 'Minimum allocatable amount per resource, in milli-units.',
  }),
});

/** The resources with a minimum, in name order (byte-wise). */
const minimums = (cfg) => [...cfg.minAllocatableMilli.keys()].sort(compareBytes);

export const filter = placementFilter({
  name: 'region-capacity-filter',
  version: '0.1.0',
  summary: 'Keeps clusters in allowed regions with enough allocatable resources.',
  config: Config,
  validate(cfg) {
    if (cfg.regions.length === 0) fail('regions must name at least one region');
    if (cfg.regionLabel === '') fail('regionLabel must not be empty');
    for (const [resource, min] of cfg.minAllocatableMilli) {
      if (min < 0n) fail(`minAllocatableMilli.${resource} must not be negative`);
    }
  },
  reads: (cfg) => ({ labels: [cfg.regionLabel], resources: minimums(cfg) }),

  filter(cfg, clusters) {
    const regions = clusters.labelColumn(cfg.regionLabel);
    const allowed = new Set(cfg.regions);
    const resources = minimums(cfg).map((name) => ({
      name,
      min: cfg.minAllocatableMilli.get(name),
      column: clusters.resourceColumn(name),
    }));
    return clusters.map((_cluster, i) => {
      const region = regions.get(i);
      if (region === undefined) return `label ${cfg.regionLabel} missing`;
      if (!allowed.has(region)) return `region ${region} not allowed`;
      for (const { name, min, column } of resources) {
        const got = column.allocatable(i);
        if (got === undefined) return `${name} not reported`;
        if (got < min) return `${name} allocatable ${got}m below ${min}m`;
      }
      return null;
    });
  },
});
