// Deterministic prompts of varied length (1 to ~40 words) in the bundled model's domain (emoji),
// for the ETA and editor-latency benchmarks.
import { createRng } from '../server/adadiff/random';

const SUBJECTS = ['red apple', 'cat face', 'rocket', 'grinning face', 'red heart', 'sun', 'pizza', 'dog face', 'flag of japan', 'green apple', 'banana', 'fire', 'ghost', 'snowman', 'house', 'tree', 'crescent moon', 'rainbow', 'birthday cake', 'soccer ball'];
const MODIFIERS = ['smiling', 'with sunglasses', 'tiny', 'glossy', 'flat icon', 'emoji', 'clip art', 'bright colours', 'on a white background', 'cartoon', 'shiny', 'simple', 'round', 'happy', 'sparkling', 'night', 'winter', 'food', 'animal', 'symbol', 'picture', 'outlined', 'pastel', 'bold'];

/** `count` prompts; lengths cycle through short, medium and long so every length is represented. */
export function benchPrompts(count: number, seed = 1): string[] {
  const rng = createRng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng.uniform() * xs.length)];
  const lengths = [0, 1, 2, 4, 8, 16, 30];
  return Array.from({ length: count }, (_, i) => {
    const words = [pick(SUBJECTS)];
    const extra = lengths[i % lengths.length];
    for (let k = 0; k < extra; k++) words.push(pick(MODIFIERS));
    return `${words.join(i % 3 === 0 ? ', ' : ' ')} ${i}`;
  });
}
