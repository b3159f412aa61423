// canary-waves: a canary, then percentage waves, each gated on the health of everything
// before it (spec: plugins/examples/README.md).

import { compareBytes, config, fail } from '../flotilla-plugin-sdk/flotilla.js';
import { rolloutStrategy, Status } from '../flotilla-plugin-sdk/rollout-strategy.js';

const Config = config.object({
  canary: config.integer({ minimum: 0, default: 1, description: 'Clusters in the first stage.' }),
  waves: config.array(config.integer(), {
    default: [100],
    description: 'Each wave extends the rollout to this percentage of all clusters.',
  }),
  maxFailures: config.integer({ minimum: 0, default: 0, description: 'Failures tolerated before the rollout stops.' }),
});

const SETTLED = new Set([Status.Succeeded, Status.Failed, Status.TimeOut]);

/** The end of each stage: stage k covers clusters [0, bounds[k]). */
function stageBounds(cfg, total) {
  const raw = [cfg.canary < total ? cfg.canary : total];
  for (const p of cfg.waves) {
    const last = raw[raw.length - 1];
    let b = (total * p + 99n) / 100n;
    if (b < last) b = last;
    if (b > total) b = total;
    raw.push(b);
  }
  if (raw[raw.length - 1] < total) raw.push(total);
  const bounds = [];
  for (const b of raw) if (b !== 0n && b !== bounds[bounds.length - 1]) bounds.push(b);
  return bounds.map(Number);
}

export const strategy = rolloutStrategy({
  name: 'canary-waves',
  version: '0.1.0',
  summary: 'A canary, then percentage waves, each gated on the health of everything before it.',
  config: Config,
  validate(cfg) {
    if (cfg.waves.some((p) => p < 1n || p > 100n)) fail('waves must be percentages from 1 to 100');
  },

  decide(cfg, all) {
    const clusters = all
      .filter((c) => c.status !== Status.Skip)
      .sort((a, b) => a.groupIndex - b.groupIndex || compareBytes(a.name, b.name));
    const total = clusters.length;
    const bounds = stageBounds(cfg, BigInt(total));
    const failed = clusters.filter((c) => c.status === Status.Failed || c.status === Status.TimeOut).map((c) => c.name);

    if (BigInt(failed.length) > cfg.maxFailures) {
      return {
        proceed: clusters.filter((c) => c.status === Status.Progressing).map((c) => c.name),
        failed,
        stop: true,
        message: `stopped: ${failed.length} failure(s), more than maxFailures ${cfg.maxFailures}`,
      };
    }
    const unsettled = (end) => clusters.slice(0, end).filter((c) => !SETTLED.has(c.status)).length;
    const k = bounds.findIndex((end) => unsettled(end) > 0);
    if (k < 0) return { proceed: [], failed, stop: false, message: `complete: ${total} cluster(s)` };
    const end = bounds[k];
    return {
      proceed: clusters
        .slice(0, end)
        .filter((c) => c.status === Status.ToApply || c.status === Status.Progressing)
        .map((c) => c.name),
      failed,
      stop: false,
      message: `stage ${k + 1} of ${bounds.length}: waiting for ${unsettled(end)} of ${end} cluster(s)`,
    };
  },
});
