// The whiteboard (beta): one canvas everyone draws on. Pointer moves never re-render
// Preact: they change plain variables and ask for one animation frame.
import { useSignal } from "@preact/signals";
import { useEffect, useRef } from "preact/hooks";
import { t } from "../lib/i18n";
import { BOARD_ASPECT, groupOf, paint } from "./boardModel";
import type { CallSession } from "./session";
import type { BoardKind, BoardOp } from "./types";
import { confirmThen } from "./ui";

type Tool = Exclude<BoardKind, "clear">;
const TOOLS: Tool[] = ["stroke", "line", "rect", "ellipse", "text", "erase"];
const COLORS = ["#1b1f24", "#2458d6", "#b3261e", "#1e8e3e", "#e37400"];
const WIDTHS = [3, 8];
const PIECE_MS = 120; // a stroke is sent in pieces this often while it is drawn
const MAX_POINTS = 3998; // the protocol's 4000 coordinates, in pairs
const ERASER_PX = 8;

const clamp = (v: number) => Math.min(1, Math.max(0, v));
const newId = () => crypto.randomUUID();

export function Board({ session }: { session: CallSession }) {
  const tool = useSignal<Tool>("stroke");
  const color = useSignal(COLORS[0]);
  const width = useSignal(WIDTHS[0]);
  const typing = useSignal<{ x: number; y: number } | null>(null);
  const frame = useRef<HTMLDivElement>(null);
  const canvas = useRef<HTMLCanvasElement>(null);
  const textInput = useRef<HTMLInputElement>(null);
  useEffect(() => textInput.current?.focus(), [typing.value]);

  useEffect(() => {
    const element = canvas.current!;
    const box = frame.current!;
    const ctx = element.getContext("2d")!;
    // Finished ops are painted once onto this layer; each frame copies it and adds the
    // op being drawn.
    const layer = document.createElement("canvas");
    const lctx = layer.getContext("2d")!;
    let w = 0;
    let h = 0;
    let painted = 0;
    let generation = -1;
    let frameId = 0;
    let drawing: BoardOp | null = null;
    let erasing = false;
    let rect = element.getBoundingClientRect();
    let strokeId = "";
    let piece = 0;
    let pieceTimer = 0;

    const render = () => {
      frameId = 0;
      const model = session.board;
      if (generation !== model.generation || painted > model.ops.length) {
        lctx.clearRect(0, 0, w, h);
        painted = 0;
        generation = model.generation;
      }
      for (; painted < model.ops.length; painted++) paint(lctx, model.ops[painted], w, h);
      ctx.clearRect(0, 0, w, h);
      ctx.drawImage(layer, 0, 0, w, h);
      if (drawing) paint(ctx, drawing, w, h);
    };
    const schedule = () => {
      if (!frameId) frameId = requestAnimationFrame(render);
    };
    const resize = () => {
      const room = box.getBoundingClientRect();
      w = Math.floor(Math.min(room.width, room.height * BOARD_ASPECT));
      h = Math.floor(w / BOARD_ASPECT);
      const dpr = window.devicePixelRatio || 1;
      for (const c of [element, layer]) {
        c.width = Math.round(w * dpr);
        c.height = Math.round(h * dpr);
      }
      element.style.width = `${w}px`;
      element.style.height = `${h}px`;
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      lctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      generation = -1;
      schedule();
    };
    const at = (e: PointerEvent): [number, number] => [
      clamp((e.clientX - rect.left) / rect.width),
      clamp((e.clientY - rect.top) / rect.height),
    ];
    const sendPiece = (last: boolean) => {
      if (!drawing) return;
      const points = drawing.points!;
      // A later piece starts at the previous one's last point, so the line has no gaps.
      if (points.length >= 4 || (points.length === 2 && piece === 0 && last)) {
        session.draw([drawing]);
        piece++;
        drawing = { ...drawing, id: `${strokeId}~${piece}`, points: points.slice(-2) };
      }
      if (last) drawing = null;
    };
    const erase = (e: PointerEvent) => {
      const [x, y] = at(e);
      const { width: bw, height: bh } = rect;
      const hit = session.board.hit(x * bw, y * bh, bw, bh, ERASER_PX);
      if (!hit) return;
      const group = groupOf(hit.id);
      const targets = session.board.ops.filter((op) => groupOf(op.id) === group);
      session.draw(targets.map((op) => ({ id: newId(), kind: "erase", target: op.id })));
    };

    const down = (e: PointerEvent) => {
      if (e.button !== 0) return;
      rect = element.getBoundingClientRect();
      const [x, y] = at(e);
      const kind = tool.peek();
      if (kind === "text") {
        typing.value = { x, y };
        return;
      }
      element.setPointerCapture(e.pointerId);
      if (kind === "erase") {
        erasing = true;
        erase(e);
        return;
      }
      const style = { color: color.peek(), width: width.peek() };
      if (kind === "stroke") {
        strokeId = newId();
        piece = 0;
        drawing = { id: `${strokeId}~0`, kind, points: [x, y], ...style };
        pieceTimer = window.setInterval(() => sendPiece(false), PIECE_MS);
      } else {
        drawing = { id: newId(), kind, points: [x, y, x, y], ...style };
      }
      schedule();
    };
    const move = (e: PointerEvent) => {
      if (erasing) return erase(e);
      if (!drawing) return;
      const points = drawing.points!;
      if (drawing.kind === "stroke") {
        for (const event of e.getCoalescedEvents?.() ?? [e]) {
          const [x, y] = at(event);
          const n = points.length;
          if (Math.abs(x - points[n - 2]) + Math.abs(y - points[n - 1]) < 0.001) continue;
          points.push(x, y);
          if (points.length >= MAX_POINTS) sendPiece(false);
        }
      } else {
        [points[2], points[3]] = at(e);
      }
      schedule();
    };
    const up = () => {
      erasing = false;
      if (!drawing) return;
      if (drawing.kind === "stroke") {
        clearInterval(pieceTimer);
        sendPiece(true);
      } else {
        const [x0, y0, x1, y1] = drawing.points!;
        if (x0 !== x1 || y0 !== y1) session.draw([drawing]);
        drawing = null;
      }
      schedule();
    };

    const observer = new ResizeObserver(resize);
    observer.observe(box);
    const unsubscribe = session.board.version.subscribe(schedule);
    element.addEventListener("pointerdown", down);
    element.addEventListener("pointermove", move);
    element.addEventListener("pointerup", up);
    element.addEventListener("pointercancel", up);
    return () => {
      observer.disconnect();
      unsubscribe();
      cancelAnimationFrame(frameId);
      clearInterval(pieceTimer);
    };
  }, [session]);

  const writeText = (text: string) => {
    const spot = typing.value;
    typing.value = null;
    if (!spot || !text.trim()) return;
    session.draw([
      {
        id: newId(),
        kind: "text",
        points: [spot.x, spot.y],
        text: text.slice(0, 2000),
        color: color.value,
        width: width.value > WIDTHS[0] ? 6 : 4,
      },
    ]);
  };

  return (
    <section class="board" aria-label={t("call.board")}>
      <div class="board-tools" role="toolbar" aria-label={t("call.board.tools")}>
        {TOOLS.map((kind) => (
          <button
            key={kind}
            type="button"
            class="secondary"
            aria-pressed={tool.value === kind}
            onClick={() => (tool.value = kind)}
          >
            {t(`call.board.${kind}`)}
          </button>
        ))}
        <span class="board-swatches">
          {COLORS.map((c) => (
            <button
              key={c}
              type="button"
              class="swatch"
              style={{ background: c }}
              aria-pressed={color.value === c}
              aria-label={t(`call.board.color${COLORS.indexOf(c)}`)}
              onClick={() => (color.value = c)}
            />
          ))}
        </span>
        {WIDTHS.map((value, index) => (
          <button
            key={value}
            type="button"
            class="secondary"
            aria-pressed={width.value === value}
            onClick={() => (width.value = value)}
          >
            {t(index ? "call.board.thick" : "call.board.thin")}
          </button>
        ))}
        <button
          type="button"
          class="secondary"
          onClick={() =>
            confirmThen(t("call.board.clear.confirm"), t("call.board.clear"), () =>
              session.draw([{ id: newId(), kind: "clear" }]),
            )
          }
        >
          {t("call.board.clear")}
        </button>
      </div>
      <div class="board-frame" ref={frame}>
        <div class="board-sheet">
          <canvas
            ref={canvas}
            class={`board-canvas tool-${tool.value}`}
            role="img"
            aria-label={t("call.board.canvas")}
          />
          {typing.value && (
            <input
              class="board-text"
              ref={textInput}
              aria-label={t("call.board.text_input")}
              style={{ left: `${typing.value.x * 100}%`, top: `${typing.value.y * 100}%` }}
              onKeyDown={(e) => {
                if (e.key === "Enter") writeText(e.currentTarget.value);
                if (e.key === "Escape") typing.value = null;
              }}
              onBlur={(e) => writeText(e.currentTarget.value)}
            />
          )}
        </div>
      </div>
    </section>
  );
}
