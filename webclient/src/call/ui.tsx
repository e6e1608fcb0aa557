// Small pieces the lesson screen's parts share: icons, the side panel, the confirmation.
import { signal } from "@preact/signals";
import type { ComponentChildren } from "preact";
import { useEffect, useRef } from "preact/hooks";
import { t } from "../lib/i18n";

// 24×24 outline icons, one path each.
const ICONS = {
  mic: "M12 3a3 3 0 0 1 3 3v6a3 3 0 0 1-6 0V6a3 3 0 0 1 3-3zM5 11a7 7 0 0 0 14 0M12 18v3",
  camera: "M3 7h12v10H3zM15 10l6-3v10l-6-3",
  screen: "M3 4h18v12H3zM8 20h8M12 16v4",
  hand: "M8 13V5.5a1.5 1.5 0 0 1 3 0V11m0-6.5a1.5 1.5 0 0 1 3 0V11m0-5a1.5 1.5 0 0 1 3 0v7c0 4-2.5 7-6 7-3 0-4.5-1.5-6-4l-2-3.5a1.4 1.4 0 0 1 2.4-1.5L8 13",
  chat: "M4 5h16v11H9l-5 4z",
  people: "M9 11a3.5 3.5 0 1 0 0-7 3.5 3.5 0 0 0 0 7zM2 20c0-3.5 3-6 7-6s7 2.5 7 6M16 4a3.5 3.5 0 0 1 0 7M18 14c2.5.5 4 2.8 4 6",
  grid: "M4 4h7v7H4zM13 4h7v7h-7zM4 13h7v7H4zM13 13h7v7h-7z",
  speaker: "M3 4h18v11H3zM3 18h5v2H3zM10 18h4v2h-4zM16 18h5v2h-5z",
  board: "M3 4h18v13H3zM8 21l4-4 4 4M7 13l3-3 2 2 5-5",
  rooms: "M3 3h8v8H3zM13 3h8v8h-8zM3 13h8v8H3zM13 13h8v8h-8zM7 11v2M17 11v2M11 7h2M11 17h2",
  settings: "M4 6h16M4 12h16M4 18h16M9 4v4M15 10v4M7 16v4",
  minimise: "M4 14h6v6M20 10h-6V4M14 10l7-7M3 21l7-7",
  fullscreen: "M4 9V4h5M20 9V4h-5M4 15v5h5M20 15v5h-5",
  leave: "M10 4H5v16h5M15 8l4 4-4 4M19 12H9",
  more: "M5 12h.01M12 12h.01M19 12h.01",
  pin: "M9 3h6l-1 6 3 3H7l3-3zM12 12v9",
  close: "M6 6l12 12M18 6L6 18",
  slash: "M3 3l18 18",
} as const;

export type IconName = keyof typeof ICONS;

export function Icon({ name, off = false }: { name: IconName; off?: boolean }) {
  return (
    <svg class="call-icon" viewBox="0 0 24 24" aria-hidden="true">
      <path d={ICONS[name]} />
      {off && <path d={ICONS.slash} />}
    </svg>
  );
}

/** A side panel on a laptop, a full-screen sheet on a phone. Escape closes it. */
export function Panel({
  id,
  title,
  onClose,
  children,
}: {
  id: string;
  title: string;
  onClose: () => void;
  children: ComponentChildren;
}) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), [id]);
  return (
    <aside
      class="call-panel"
      aria-labelledby={`${id}-title`}
      onKeyDown={(e) => e.key === "Escape" && onClose()}
    >
      <header>
        <h2 id={`${id}-title`} tabIndex={-1} ref={heading}>
          {title}
        </h2>
        <button type="button" class="icon-button" onClick={onClose} aria-label={t("common.close")}>
          <Icon name="close" />
        </button>
      </header>
      <div class="call-panel-body">{children}</div>
    </aside>
  );
}

interface Question {
  text: string;
  yes: string;
  danger?: boolean;
  run: () => void;
}

const question = signal<Question | null>(null);

/** Ask before something that cannot be undone. */
export function confirmThen(text: string, yes: string, run: () => void, danger = true): void {
  question.value = { text, yes, run, danger };
}

export function ConfirmDialog() {
  const dialog = useRef<HTMLDialogElement>(null);
  const asked = question.value;
  useEffect(() => {
    const element = dialog.current;
    if (asked && element && !element.open) element.showModal();
  }, [asked]);
  if (!asked) return null;
  const close = () => {
    dialog.current?.close();
    question.value = null;
  };
  return (
    <dialog class="call-confirm" ref={dialog} onClose={() => (question.value = null)}>
      <p>{asked.text}</p>
      <div class="call-row">
        <button type="button" class="secondary" onClick={close}>
          {t("common.cancel")}
        </button>
        <button
          type="button"
          class={asked.danger ? "danger" : ""}
          onClick={() => {
            close();
            asked.run();
          }}
        >
          {asked.yes}
        </button>
      </div>
    </dialog>
  );
}

/** "ИМ" for "Иванова Мария Петровна". */
export function initials(name: string): string {
  return name
    .split(/\s+/)
    .slice(0, 2)
    .map((part) => part[0] ?? "")
    .join("")
    .toUpperCase();
}

export function clock(ms: number): string {
  const total = Math.max(0, Math.round(ms / 1000));
  const minutes = Math.floor(total / 60);
  const seconds = total % 60;
  return `${minutes}:${seconds.toString().padStart(2, "0")}`;
}
