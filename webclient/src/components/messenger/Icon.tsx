// Small line icons drawn inline: they look the same everywhere, emoji fonts or not.
const PATHS = {
  attach: "M20 11.5l-8 8a5 5 0 0 1-7-7l8.5-8.5a3.4 3.4 0 0 1 4.8 4.8L9.8 17.3a1.7 1.7 0 0 1-2.4-2.4L15 7.3",
  poll: "M5 20V11M12 20V4M19 20v-6",
  mic: "M12 3a3 3 0 0 0-3 3v6a3 3 0 0 0 6 0V6a3 3 0 0 0-3-3zM5 11a7 7 0 0 0 14 0M12 18v3",
  info: "M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18zM12 11v6M12 7.5v.01",
  send: "M4 12L20 4l-6 16-2.5-6.5z",
  pin: "M9 3h6l-1 6 3 3.5H7L10 9zM12 12.5V21",
  muted: "M18 8a6 6 0 0 0-9.5-4.9M6 8c0 7-3 9-3 9h14M13.7 21a2 2 0 0 1-3.4 0M3 3l18 18",
  file: "M14 3H7a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h10a2 2 0 0 0 2-2V8zM14 3v5h5",
  play: "M8 5v14l11-7z",
  pause: "M7 5h3.5v14H7zM13.5 5H17v14h-3.5z",
};

export type IconName = keyof typeof PATHS;

export function Icon({ name }: { name: IconName }) {
  const solid = name === "play" || name === "pause";
  return (
    <svg
      class="icon-svg"
      viewBox="0 0 24 24"
      width="20"
      height="20"
      aria-hidden="true"
      fill={solid ? "currentColor" : "none"}
      stroke={solid ? "none" : "currentColor"}
      stroke-width="2"
      stroke-linecap="round"
      stroke-linejoin="round"
    >
      <path d={PATHS[name]} />
    </svg>
  );
}
