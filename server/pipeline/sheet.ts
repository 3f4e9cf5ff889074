// A labelled grid of images: prompts down, step counts across. It is how a person judges what a
// step count costs in quality, for the bundled model's card and for any model (`adadiff sheet`).
import { Canvas } from './canvas';
import { encodePng, type RgbImage } from './png';

export interface SheetRow {
  label: string;
  cells: RgbImage[];
}

const INK = [30, 30, 30] as const;
const PAD = 8;
const LABEL_WIDTH = 170;
const HEADER = 18;
const CHARS = Math.floor((LABEL_WIDTH - PAD) / 6);

/** Wrap a label into lines of the 5x7 font's width, at most `max` lines (the last one cut with '..'). */
function wrap(text: string, max: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    const next = line ? `${line} ${word}` : word;
    if (next.length <= CHARS) line = next;
    else {
      if (line) lines.push(line);
      line = word.slice(0, CHARS);
    }
  }
  if (line) lines.push(line);
  if (lines.length > max) lines.splice(max - 1, lines.length, `${lines[max - 1].slice(0, CHARS - 2)}..`);
  return lines;
}

export function composeSheet(columns: string[], rows: SheetRow[], scale = 2): Buffer {
  const cellW = Math.max(...rows.flatMap((r) => r.cells.map((c) => c.width))) * scale;
  const cellH = Math.max(...rows.flatMap((r) => r.cells.map((c) => c.height))) * scale;
  const width = LABEL_WIDTH + columns.length * (cellW + PAD) + PAD;
  const height = HEADER + rows.length * (cellH + PAD) + PAD;
  const canvas = new Canvas(width, height);
  columns.forEach((title, i) => canvas.text(LABEL_WIDTH + i * (cellW + PAD) + (cellW - title.length * 6) / 2, 6, title, INK));
  rows.forEach((row, r) => {
    const y = HEADER + r * (cellH + PAD);
    wrap(row.label, Math.floor(cellH / 10)).forEach((line, k) => canvas.text(PAD, y + 4 + k * 10, line, INK));
    row.cells.forEach((cell, i) => canvas.blit(cell, LABEL_WIDTH + i * (cellW + PAD), y, scale));
  });
  return encodePng({ width, height, data: canvas.data });
}
