// A tiny RGB raster with a built-in 5x7 font: enough for charts and labelled sample sheets,
// encoded by the pipeline's PNG writer, so no canvas or font library is needed.
import type { RgbImage } from './png';

export type Color = readonly [number, number, number];

// 5x7 glyphs, one string of 7 rows per character ('#' = ink).
const GLYPHS: Record<string, string> = {
  '0': '.###.#...##..###.#.###..##...#.###.', '1': '..#...##....#....#....#....#...###.',
  '2': '.###.#...#....#...#...#...#...#####', '3': '####.....#....#.###.....#....#####.',
  '4': '...#...##..#.#.#..#.#####...#....#.', '5': '######....####.....#....##...#.###.',
  '6': '..##..#...#....####.#...##...#.###.', '7': '#####....#...#...#...#....#....#...',
  '8': '.###.#...##...#.###.#...##...#.###.', '9': '.###.#...##...#.####....#...#..##..',
  A: '.###.#...##...#######...##...##...#', B: '####.#...##...#####.#...##...#####.',
  C: '.###.#...##....#....#....#...#.###.', D: '###..#..#.#...##...##...##..#.###..',
  E: '######....#....####.#....#....#####', F: '######....#....####.#....#....#....',
  G: '.###.#...##....#.####...##...#.####', H: '#...##...##...#######...##...##...#',
  I: '.###...#....#....#....#....#...###.', J: '..###...#....#....#....#.#..#..##..',
  K: '#...##..#.#.#..##...#.#..#..#.#...#', L: '#....#....#....#....#....#....#####',
  M: '#...###.###.#.##.#.##...##...##...#', N: '#...##...###..##.#.##..###...##...#',
  O: '.###.#...##...##...##...##...#.###.', P: '####.#...##...#####.#....#....#....',
  Q: '.###.#...##...##...##.#.##..#..##.#', R: '####.#...##...#####.#.#..#..#.#...#',
  S: '.#####....#.....###.....#....#####.', T: '#####..#....#....#....#....#....#..',
  U: '#...##...##...##...##...##...#.###.', V: '#...##...##...##...##...#.#.#...#..',
  W: '#...##...##...##.#.##.#.##.#.#.#.#.', X: '#...##...#.#.#...#...#.#.#...##...#',
  Y: '#...##...#.#.#...#....#....#....#..', Z: '#####....#...#...#...#...#....#####',
  '.': '..........................##...##..', '-': '................###................',
  '%': '##...##..#...#...#...#...#..##...##', ':': '......##...##........##...##.......',
  '=': '..........#####.....#####..........', ' ': '...................................',
  '(': '...#...#...#....#....#.....#.....#.', ')': '.#.....#.....#....#....#...#...#...',
};

export class Canvas {
  readonly data: Uint8Array;
  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.data = new Uint8Array(width * height * 3).fill(255);
  }

  pixel(x: number, y: number, c: Color): void {
    x = Math.round(x);
    y = Math.round(y);
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    this.data.set(c, (y * this.width + x) * 3);
  }

  rect(x: number, y: number, w: number, h: number, c: Color): void {
    for (let j = 0; j < h; j++) for (let i = 0; i < w; i++) this.pixel(x + i, y + j, c);
  }

  line(x0: number, y0: number, x1: number, y1: number, c: Color, dash = 0): void {
    const n = Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0), 1);
    for (let i = 0; i <= n; i++) {
      if (dash > 0 && Math.floor(i / dash) % 2 === 1) continue;
      this.pixel(x0 + ((x1 - x0) * i) / n, y0 + ((y1 - y0) * i) / n, c);
    }
  }

  disc(x: number, y: number, r: number, c: Color): void {
    for (let j = -r; j <= r; j++) for (let i = -r; i <= r; i++) if (i * i + j * j <= r * r) this.pixel(x + i, y + j, c);
  }

  /** Copy an image in at (x, y), each pixel drawn as a scale x scale block (nearest neighbour keeps it crisp). */
  blit(image: RgbImage, x: number, y: number, scale = 1): void {
    for (let j = 0; j < image.height * scale; j++) {
      for (let i = 0; i < image.width * scale; i++) {
        const k = (Math.floor(j / scale) * image.width + Math.floor(i / scale)) * 3;
        this.pixel(x + i, y + j, [image.data[k], image.data[k + 1], image.data[k + 2]]);
      }
    }
  }

  /** Text at scale 1 (5x7 cells, 1 px spacing); unknown characters draw as blanks. */
  text(x: number, y: number, s: string, c: Color): void {
    for (const [k, ch] of [...s.toUpperCase()].entries()) {
      const g = GLYPHS[ch] ?? GLYPHS[' '];
      for (let row = 0; row < 7; row++) for (let col = 0; col < 5; col++) if (g[row * 5 + col] === '#') this.pixel(x + k * 6 + col, y + row, c);
    }
  }
}
