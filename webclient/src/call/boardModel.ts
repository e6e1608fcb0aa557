// The whiteboard's operations and how each is painted. Coordinates are fractions of the
// board (16:9 everywhere, so shapes agree); widths scale with the board's height.
import { signal } from "@preact/signals";
import type { BoardOp } from "./types";

export const BOARD_ASPECT = 16 / 9;
const DEFAULT_COLOR = "#1b1f24";
const DEFAULT_WIDTH = 3;
/** A line of width w is w/600 of the board's height; text of size w is w/100 of it. */
const LINE_SCALE = 1 / 600;
const TEXT_SCALE = 1 / 100;

/** Strokes are sent in pieces while drawing ("<id>~<n>"); erasing one erases them all. */
export const groupOf = (id: string): string => id.split("~")[0];

export class BoardModel {
  /** What the board shows, in drawing order: after the last clear, without erased ops. */
  ops: BoardOp[] = [];
  /** Bumped when ops were removed (erase, clear): the board is painted again from scratch. */
  generation = 0;
  readonly version = signal(0);
  private seen = new Set<string>();
  private erased = new Set<string>();

  reset(ops: BoardOp[]): void {
    this.ops = [];
    this.seen.clear();
    this.erased.clear();
    this.generation++;
    this.apply(ops);
  }

  apply(ops: BoardOp[]): void {
    for (const op of ops) {
      if (this.seen.has(op.id)) continue; // our own, echoed back
      this.seen.add(op.id);
      if (op.kind === "clear") {
        this.ops = [];
        this.generation++;
      } else if (op.kind === "erase") {
        if (!op.target) continue;
        // Remembered even before its target arrives, so a late target stays erased.
        this.erased.add(op.target);
        const before = this.ops.length;
        this.ops = this.ops.filter((o) => o.id !== op.target);
        if (this.ops.length !== before) this.generation++;
      } else if (!this.erased.has(op.id)) {
        this.ops.push(op);
      }
    }
    this.version.value++;
  }

  /** The topmost op under a point (board pixels), for the eraser. */
  hit(x: number, y: number, w: number, h: number, tolerance: number): BoardOp | undefined {
    for (let i = this.ops.length - 1; i >= 0; i--) {
      if (near(this.ops[i], x, y, w, h, tolerance)) return this.ops[i];
    }
    return undefined;
  }
}

function segment(px: number, py: number, ax: number, ay: number, bx: number, by: number): number {
  const dx = bx - ax;
  const dy = by - ay;
  const length = dx * dx + dy * dy;
  const k = length ? Math.max(0, Math.min(1, ((px - ax) * dx + (py - ay) * dy) / length)) : 0;
  return Math.hypot(px - ax - k * dx, py - ay - k * dy);
}

function near(op: BoardOp, x: number, y: number, w: number, h: number, tolerance: number): boolean {
  const p = op.points ?? [];
  const slack = tolerance + ((op.width ?? DEFAULT_WIDTH) * h * LINE_SCALE) / 2;
  if (op.kind === "text") {
    const size = (op.width ?? DEFAULT_WIDTH) * h * TEXT_SCALE;
    const lines = (op.text ?? "").split("\n");
    const width = Math.max(...lines.map((line) => line.length)) * size * 0.6;
    const left = p[0] * w;
    const top = p[1] * h;
    return x >= left - tolerance && x <= left + width + tolerance && y >= top - tolerance &&
      y <= top + lines.length * size * 1.2 + tolerance;
  }
  if (p.length < 2) return false;
  if (op.kind === "stroke" || op.kind === "line") {
    if (p.length === 2) return Math.hypot(x - p[0] * w, y - p[1] * h) <= slack;
    for (let i = 2; i < p.length; i += 2) {
      if (segment(x, y, p[i - 2] * w, p[i - 1] * h, p[i] * w, p[i + 1] * h) <= slack) return true;
    }
    return false;
  }
  const x0 = Math.min(p[0], p[2]) * w;
  const x1 = Math.max(p[0], p[2]) * w;
  const y0 = Math.min(p[1], p[3]) * h;
  const y1 = Math.max(p[1], p[3]) * h;
  if (op.kind === "rect") {
    return (
      segment(x, y, x0, y0, x1, y0) <= slack ||
      segment(x, y, x1, y0, x1, y1) <= slack ||
      segment(x, y, x1, y1, x0, y1) <= slack ||
      segment(x, y, x0, y1, x0, y0) <= slack
    );
  }
  // An ellipse: how far the point is from the outline, roughly, in pixels.
  const rx = Math.max((x1 - x0) / 2, 1);
  const ry = Math.max((y1 - y0) / 2, 1);
  const r = Math.hypot((x - (x0 + rx)) / rx, (y - (y0 + ry)) / ry);
  return Math.abs(r - 1) * Math.min(rx, ry) <= slack;
}

/** Paint one op onto a board ``w`` × ``h`` pixels. */
export function paint(ctx: CanvasRenderingContext2D, op: BoardOp, w: number, h: number): void {
  const p = op.points ?? [];
  const color = op.color ?? DEFAULT_COLOR;
  const width = op.width ?? DEFAULT_WIDTH;
  ctx.strokeStyle = color;
  ctx.fillStyle = color;
  if (op.kind === "text") {
    if (p.length < 2 || !op.text) return;
    const size = width * h * TEXT_SCALE;
    ctx.font = `${size}px system-ui, sans-serif`;
    ctx.textBaseline = "top";
    const lines = op.text.split("\n");
    for (let i = 0; i < lines.length; i++) {
      ctx.fillText(lines[i], p[0] * w, p[1] * h + i * size * 1.2);
    }
    return;
  }
  if (p.length < 2) return;
  ctx.lineWidth = Math.max(1, width * h * LINE_SCALE);
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.beginPath();
  if (op.kind === "stroke" || op.kind === "line") {
    ctx.moveTo(p[0] * w, p[1] * h);
    if (p.length === 2) ctx.lineTo(p[0] * w + 0.01, p[1] * h); // a dot
    for (let i = 2; i + 1 < p.length; i += 2) ctx.lineTo(p[i] * w, p[i + 1] * h);
  } else if (p.length >= 4) {
    const x0 = Math.min(p[0], p[2]) * w;
    const y0 = Math.min(p[1], p[3]) * h;
    const bw = Math.abs(p[2] - p[0]) * w;
    const bh = Math.abs(p[3] - p[1]) * h;
    if (op.kind === "rect") ctx.rect(x0, y0, bw, bh);
    else ctx.ellipse(x0 + bw / 2, y0 + bh / 2, bw / 2, bh / 2, 0, 0, Math.PI * 2);
  }
  ctx.stroke();
}
