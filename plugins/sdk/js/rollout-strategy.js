// The rollout-strategy world: `export const strategy = rolloutStrategy({...})`.
//
//   decide(cfg, clusters, {now, owner}) gets each cluster as a RolloutCluster (a Cluster
//   with groupIndex, groupName, status (a Status value) and lastTransitionTime, BigInt ms or
//   undefined); `now` is BigInt ms. It returns {proceed, timedOut, failed, stop,
//   recheckAfterMs, message}, lists of cluster names (missing lists are empty).

import { Cluster, common, configOf, guard, ownerOf } from './flotilla.js';

export const Status = Object.freeze({
  ToApply: 'to-apply',
  Progressing: 'progressing',
  Succeeded: 'succeeded',
  Failed: 'failed',
  TimeOut: 'time-out',
  Skip: 'skip',
});

export class RolloutCluster extends Cluster {
  constructor(raw) {
    super(raw.cluster);
    this.groupIndex = raw.groupIndex;
    this.groupName = raw.groupName;
    this.status = raw.status;
    this.lastTransitionTime = raw.lastTransitionTime === undefined || raw.lastTransitionTime === null ? undefined : BigInt(raw.lastTransitionTime);
  }
}

const names = (list) => (list ?? []).map((c) => (typeof c === 'string' ? c : c.name));

export function rolloutStrategy(plugin) {
  return {
    ...common(plugin),
    decide: (text, owner, now, clusters) =>
      guard(() => {
        const cfg = configOf(plugin, text);
        const views = clusters.map((c) => new RolloutCluster(c));
        const out = plugin.decide(cfg, views, { now: BigInt(now), owner: ownerOf(owner) });
        return {
          proceed: names(out.proceed),
          timedOut: names(out.timedOut),
          failed: names(out.failed),
          stop: Boolean(out.stop),
          recheckAfterMs: out.recheckAfterMs === undefined || out.recheckAfterMs === null ? undefined : BigInt(out.recheckAfterMs),
          message: out.message === undefined || out.message === null ? undefined : String(out.message),
        };
      }),
  };
}
