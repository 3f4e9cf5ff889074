// A small seeded generator for the trainer and the policy's initialisation: the same seed gives the
// same policy on every machine, which Math.random cannot promise.

export interface Rng {
  /** Uniform in [0, 1). */
  uniform(): number;
  /** Standard normal. */
  normal(): number;
  /** Index drawn from a discrete distribution given by non-negative weights summing to ~1. */
  categorical(probabilities: ArrayLike<number>): number;
}

/** mulberry32: 32-bit state, full period, good enough statistics for sampling and init. */
export function createRng(seed: number): Rng {
  let state = seed >>> 0;
  const uniform = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    uniform,
    normal() {
      // Box-Muller; 1 - u keeps the logarithm finite.
      const u = 1 - uniform();
      const v = uniform();
      return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    },
    categorical(probabilities) {
      const r = uniform();
      let acc = 0;
      for (let i = 0; i < probabilities.length; i++) {
        acc += probabilities[i];
        if (r < acc) return i;
      }
      return probabilities.length - 1;
    },
  };
}
