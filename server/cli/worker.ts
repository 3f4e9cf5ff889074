// `adadiff worker`: a long-running pool worker on this machine (server/pool/worker.ts). The first
// Ctrl-C (or SIGTERM) finishes the jobs in flight and leaves; a second quits at once.
import { startPoolWorker } from '../pool/worker';
import { defineCommand } from './command';
import { withEngine } from './context';
import { int, model, poolOptions } from './options';
import { poolTarget } from '../pool/session';
import { poolSpec } from './pool';

export const workerCommand = defineCommand({
  name: 'worker',
  summary: 'take reward-table rows and asset images from a pool on Redis, until Ctrl-C',
  options: {
    redis: { ...poolOptions.redis, help: 'the pool: redis:// or rediss:// (TLS); the password may come from ADADIFF_REDIS_PASSWORD', required: true },
    model,
    concurrency: int('N', { min: 1, max: 64 }, 'jobs in flight at once, of each kind (reward-table rows, images)', { default: () => 1 }),
    'stalled-seconds': int('SECONDS', { min: 1, max: 3600 }, "how long a killed worker's job stays locked before another worker takes it", { default: () => 30 }),
    'allow-unauthenticated-redis': poolOptions['allow-unauthenticated-redis'],
  },
  run: (values) =>
    withEngine(async (engine) => {
      const log = (line: string) => console.error(`[${new Date().toISOString()}] ${line}`);
      // Listening from the start: a Ctrl-C while the model loads stops the worker once it is up.
      let stopping = false;
      let stopRequested!: () => void;
      const stop = new Promise<void>((resolve) => (stopRequested = resolve));
      const onSignal = () => {
        if (stopping) process.exit(130);
        stopping = true;
        log('finishing the jobs in flight (Ctrl-C again to quit at once)');
        stopRequested();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      const worker = await startPoolWorker({
        target: poolTarget(poolSpec(values)!),
        modelDir: values.model,
        engine,
        concurrency: values.concurrency,
        stalledSeconds: values['stalled-seconds'],
        log,
      });
      await stop;
      await worker.close().catch((err: Error) => log(`closing: ${err.message}`));
      log('stopped');
      return 0;
    }),
});
