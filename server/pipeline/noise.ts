// Seeded Gaussian noise that is identical on every platform.
//
// The generator is xoshiro128** (Blackman & Vigna) seeded through splitmix32, both pure 32-bit
// integer arithmetic (Math.imul, >>>), so the uniform stream is bit-identical everywhere. Normals
// come from the Box-Muller transform in float64; V8 implements Math.log/sin/cos/sqrt in software
// (fdlibm ports), so those are bit-identical across operating systems and CPUs as well. Changing
// anything here changes every image users have generated from a seed: treat it as a format.
import { integerRule, isIntegerIn, SEED } from '../limits';

export function validateSeed(seed: number): number {
  if (!isIntegerIn(seed, SEED)) throw new RangeError(`seed must be ${integerRule(SEED)}, got ${seed}`);
  return seed;
}

function splitmix32(state: number): () => number {
  let s = state >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** xoshiro128**: returns uniform uint32 values. */
function xoshiro128ss(seed: number): () => number {
  const init = splitmix32(seed);
  let a = init(), b = init(), c = init(), d = init();
  return () => {
    const result = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0;
    const t = (b << 9) >>> 0;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = rotl(d, 11);
    return result;
  };
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** A stream of standard normal samples; `next(n)` continues where the last call stopped. */
export class GaussianNoise {
  private readonly uint: () => number;
  private spare: number | undefined;

  constructor(seed: number) {
    this.uint = xoshiro128ss(validateSeed(seed));
  }

  /** Uniform in (0, 1]: 53 bits would be overkill for Box-Muller on float32 outputs; 32 suffice. */
  private uniform(): number {
    return (this.uint() + 1) / 4294967296;
  }

  private normal(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    const r = Math.sqrt(-2 * Math.log(this.uniform()));
    const theta = 2 * Math.PI * this.uniform();
    this.spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  next(length: number): Float32Array {
    const out = new Float32Array(length);
    for (let i = 0; i < length; i++) out[i] = this.normal();
    return out;
  }
}
