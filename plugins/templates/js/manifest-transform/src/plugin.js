// A manifest transform: labels every manifest with the name of the cluster it goes to.
//
//   {"labelKey": "example.com/cluster"}
//
// `transformCluster` runs once per cluster, in order, on its own copy of the manifests.

import { config } from '../flotilla-plugin-sdk/flotilla.js';
import { manifestTransform, rejectCluster } from '../flotilla-plugin-sdk/manifest-transform.js';

const Config = config.object({
  labelKey: config.string({
    minLength: 1,
    default: 'flotilla.dev/cluster',
    description: "The label that carries the cluster's name.",
  }),
});

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

export const transform = manifestTransform({
  name: '{{name}}',
  version: '0.1.0',
  summary: 'Labels every manifest with the name of the cluster it goes to.',
  config: Config,

  transformCluster(cfg, manifests, cluster) {
    // Kubernetes label values are at most 63 characters: this cluster cannot have the work.
    if (cluster.name.length > 63) {
      rejectCluster(`cluster name ${cluster.name} is longer than a label value may be (63)`);
    }
    for (const manifest of manifests) {
      if (!isObject(manifest)) rejectCluster('a manifest is not a JSON object');
      manifest.metadata ??= {};
      if (!isObject(manifest.metadata)) rejectCluster("a manifest's metadata is not an object");
      manifest.metadata.labels ??= {};
      if (!isObject(manifest.metadata.labels)) rejectCluster("a manifest's labels are not an object");
      manifest.metadata.labels[cfg.labelKey] = cluster.name;
    }
    return manifests;
  },
});
