// Seeds are 32-bit, the noise generator's (server/pipeline/noise.ts): every seed on the wire, the
// client's "New seed" and server/limits.ts's SEED bounds read this one figure. No imports: the core
// reads it without the protocol.

export const SEED_MAX = 0xffffffff;
