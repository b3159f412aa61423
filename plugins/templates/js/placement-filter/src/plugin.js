// A placement filter: keeps the clusters whose label `key` has one of `values`.
//
//   {"key": "region", "values": ["eu-west-1", "eu-central-1"]}
//
// The host calls `filter` once per scheduling cycle with every candidate cluster; the SDK
// gives them as a ClusterBatch whose labels are the ones `reads` declared.

import { config, fail, log } from '../flotilla-plugin-sdk/flotilla.js';
import { placementFilter } from '../flotilla-plugin-sdk/placement-filter.js';

// The configuration: validated, with errors naming the field; also the JSON Schema that
// describe() returns.
const Config = config.object({
  key: config.string({ minLength: 1, description: 'The label to look at.' }),
  values: config.array(config.string(), { description: 'The values that keep a cluster.' }),
});

export const filter = placementFilter({
  name: '{{name}}',
  version: '0.1.0',
  summary: 'Keeps the clusters whose label has one of the configured values.',
  config: Config,
  // Checks across fields, after the field checks: `fail` refuses the configuration.
  validate(cfg) {
    if (cfg.values.length === 0) fail('values must name at least one value');
  },
  // What the plugin reads under a configuration: the host passes exactly these.
  reads: (cfg) => ({ labels: [cfg.key] }),

  // One entry per cluster, in order: null keeps it, a string removes it for that reason.
  filter(cfg, clusters) {
    const column = clusters.labelColumn(cfg.key);
    const reason = `label ${cfg.key} not in [${cfg.values.join(', ')}]`;
    // Decide once per distinct value, then per cluster by index.
    const keep = [false, ...column.values.map((v) => cfg.values.includes(v))];
    const verdicts = [];
    let removed = 0;
    for (let i = 0; i < clusters.length; i++) {
      if (keep[column.index[i] ?? 0]) verdicts.push(null);
      else {
        verdicts.push(reason);
        removed++;
      }
    }
    // Log lines land in the hub's log, tagged with the plugin's name.
    log.debug(`removing ${removed} of ${clusters.length} cluster(s)`);
    return verdicts;
  },
});
