// A rollout strategy: rolls out to at most `maxConcurrent` clusters at a time, in decision
// group order, and stops at the first failure.
//
//   {"maxConcurrent": 2}
//
// The world is deterministic: `now` is an argument (BigInt ms), and there is no clock and
// no randomness, so the same input always gives the same decision.

import { config } from '../flotilla-plugin-sdk/flotilla.js';
import { rolloutStrategy, Status } from '../flotilla-plugin-sdk/rollout-strategy.js';

const Config = config.object({
  maxConcurrent: config.integer({
    minimum: 1,
    default: 1,
    description: 'How many clusters may be in flight (applied, not yet succeeded) at once.',
  }),
});

export const strategy = rolloutStrategy({
  name: '{{name}}',
  version: '0.1.0',
  summary: 'Rolls out to a few clusters at a time and stops at the first failure.',
  config: Config,

  decide(cfg, clusters) {
    const named = (status) => clusters.filter((c) => c.status === status).map((c) => c.name);
    const failed = [...named(Status.Failed), ...named(Status.TimeOut)];
    // Clusters in flight keep getting the revision.
    const proceed = named(Status.Progressing);
    const stop = failed.length > 0;
    if (!stop) {
      // New clusters, by decision group (a stable sort), until maxConcurrent are in flight.
      const waiting = clusters.filter((c) => c.status === Status.ToApply).sort((a, b) => a.groupIndex - b.groupIndex);
      const room = Math.max(0, Number(cfg.maxConcurrent) - proceed.length);
      proceed.push(...waiting.slice(0, room).map((c) => c.name));
    }
    const succeeded = named(Status.Succeeded).length;
    const total = clusters.filter((c) => c.status !== Status.Skip).length;
    const message = stop
      ? `stopped: ${failed.length} cluster(s) failed`
      : `${succeeded} of ${total} cluster(s) succeeded, ${proceed.length} in flight`;
    return { proceed, failed, stop, message };
  },
});
