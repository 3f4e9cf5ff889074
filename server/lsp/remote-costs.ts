// The main thread's cost figures. The UNet and VAE live in the render worker, so it measures them;
// hovers never wait for that. A figure measured before (this session or an earlier one) is found
// in the cache by calibrationHint without loading anything; otherwise the first hover asks the
// worker to load and measure in the background and shows the steps without a time until then.
import { type Calibration, type CalibrationShape, type CalibrationStore, calibrationHint } from '../adadiff/cost';
import { type CostSource, runtimeVersion } from '../engine';
import type { TextModel } from '../model/session';
import type { Renderer } from './renderer';

/** A failed measurement (the UNet did not fit in memory, say) is tried again after this long. */
const RETRY_AFTER_MS = 10_000;

interface Measurement {
  promise: Promise<Calibration>;
  value?: Calibration;
  error?: Error;
  failedAt?: number;
}

const keyOf = (shape: CalibrationShape) => JSON.stringify([shape.guided, shape.width, shape.height]);

/** A failure recent enough to be shown rather than tried again. */
const recentFailure = (m: Measurement | undefined): m is Measurement & { error: Error } =>
  m?.error !== undefined && m.failedAt !== undefined && Date.now() - m.failedAt <= RETRY_AFTER_MS;

export interface RemoteCostsOptions {
  model: TextModel;
  store: CalibrationStore;
  renderer: Renderer;
  providers: string[];
  cacheDir: string;
  /**
   * A figure arrived that hovers did not have, or measuring failed (the UNet did not fit in
   * memory): predictions and lenses should be made again.
   */
  onChange: (outcome: Calibration | Error) => void;
}

export class RemoteCosts implements CostSource {
  private readonly measured = new Map<string, Measurement>();

  constructor(private readonly o: RemoteCostsOptions) {}

  get(shape: CalibrationShape): Promise<Calibration> {
    const key = keyOf(shape);
    const m = this.measured.get(key);
    if (m && (m.failedAt === undefined || recentFailure(m))) return m.promise;
    const entry: Measurement = {
      promise: this.o.renderer.calibrate({ model: this.o.model.folder.dir, providers: this.o.providers, cacheDir: this.o.cacheDir, shape }),
    };
    entry.promise.then(
      (cal) => this.settle(entry, cal),
      (err: Error) => this.fail(entry, err),
    );
    this.measured.set(key, entry);
    return entry.promise;
  }

  /** The worker's figure replaces what hovers showed when it differs (another provider, measured again). */
  private settle(entry: Measurement, cal: Calibration): void {
    const before = entry.value;
    entry.value = cal;
    if (before?.key !== cal.key || before.measuredAt !== cal.measuredAt) this.o.onChange(cal);
  }

  private fail(entry: Measurement, err: Error): void {
    Object.assign(entry, { error: err, failedAt: Date.now() });
    this.o.onChange(err);
  }

  async peek(shape: CalibrationShape): Promise<Calibration | { notYet: string }> {
    const key = keyOf(shape);
    const m = this.measured.get(key);
    if (m?.value) return m.value;
    if (recentFailure(m)) return { notYet: `the cost could not be measured: ${m.error.message}` };
    if (!m) {
      const cached = await this.o.store.findByHint(await calibrationHint(this.o.model, shape, runtimeVersion()));
      if (cached) {
        this.measured.set(key, { promise: Promise.resolve(cached), value: cached });
        return cached;
      }
    }
    void this.get(shape).catch(() => undefined);
    return { notYet: 'the cost is not measured yet: the UNet and VAE are loading in the background to measure it' };
  }

  /** Measure again in the worker (AdaDiff: Recalibrate Cost Model). */
  async recalibrate(shape: CalibrationShape): Promise<Calibration> {
    const entry: Measurement = { promise: this.o.renderer.calibrate({ model: this.o.model.folder.dir, providers: this.o.providers, cacheDir: this.o.cacheDir, shape, fresh: true }) };
    this.measured.set(keyOf(shape), entry);
    const cal = await entry.promise.catch((err: Error) => {
      this.fail(entry, err);
      throw err;
    });
    this.settle(entry, cal);
    return cal;
  }
}
