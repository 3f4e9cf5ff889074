// Prompt lists for training and evaluation: the file format (one prompt a line, `#` comments) and
// the held-out split. Pure, so the CLI, the language server and the VS Code client read a prompts
// file the same way and the editor's training holds out the same prompts for the same list.

/** One prompt a line; blank lines and lines starting with `#` are skipped. */
export function parsePromptLines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
}

/**
 * Below this a reward table says little and an evaluation nothing: the editor refuses to train on
 * fewer (the CLI leaves it to the user).
 */
export const MIN_TRAINING_PROMPTS = 8;

/** Every HOLD_OUT_EVERY-th prompt is held out when no held-out list is given: about 20%. */
const HOLD_OUT_EVERY = 5;

/** How many of `n` prompts splitHeldOut holds out. */
export const heldOutCount = (n: number): number => Math.floor(n / HOLD_OUT_EVERY);

/**
 * Splits a list into training and held-out prompts, deterministically (every fifth prompt, the
 * fifth first), so a re-run holds out the same prompts and resumes from the same cached table,
 * and the split spreads over a list sorted by topic or length.
 */
export function splitHeldOut(prompts: readonly string[]): { train: string[]; heldOut: string[] } {
  const train: string[] = [];
  const heldOut: string[] = [];
  prompts.forEach((p, i) => ((i % HOLD_OUT_EVERY) === HOLD_OUT_EVERY - 1 ? heldOut : train).push(p));
  return { train, heldOut };
}
