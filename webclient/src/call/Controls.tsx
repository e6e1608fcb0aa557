// The lesson's header (title, recording, breakout room and its countdown, host actions)
// and its control bar. Every control is a labelled button; toggles say so with aria-pressed.
import { signal } from "@preact/signals";
import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import { t } from "../lib/i18n";
import { navigate } from "../lib/router";
import type { CallSession, Panel } from "./session";
import { type IconName, Icon, clock, confirmThen } from "./ui";

/** Whether the lesson screen fills the display (the fullscreen API). */
export const fullscreen = signal(false);
document.addEventListener("fullscreenchange", () => {
  fullscreen.value = document.fullscreenElement !== null;
});

function Control({
  icon,
  label,
  pressed,
  off,
  disabled,
  title,
  danger,
  badge,
  onClick,
}: {
  icon: IconName;
  label: string;
  pressed?: boolean;
  off?: boolean;
  disabled?: boolean;
  title?: string;
  danger?: boolean;
  badge?: ComponentChildren;
  onClick: () => void;
}) {
  return (
    <button
      type="button"
      class={`control${danger ? " danger" : ""}${off ? " is-off" : ""}`}
      aria-pressed={pressed}
      disabled={disabled}
      title={title}
      onClick={onClick}
    >
      <Icon name={icon} off={off} />
      <span class="control-label">{label}</span>
      {badge !== undefined && <span class="control-badge">{badge}</span>}
    </button>
  );
}

export function Countdown({ until }: { until: number }) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, [until]);
  return (
    <span
      class="countdown"
      role="timer"
      aria-label={t("call.rooms.left", { time: clock(until - now) })}
    >
      {clock(until - now)}
    </span>
  );
}

export function CallHeader({ session }: { session: CallSession }) {
  const info = session.info.value;
  const state = session.people.value;
  const room = session.room.value;
  const host = session.host.value;
  const hands = (state?.people ?? []).filter((p) => p.hand != null).length;
  return (
    <header class="call-header">
      <h1>{info?.title}</h1>
      {state?.recording && (
        <span class="call-rec" role="status">
          {t("call.recording")}
        </span>
      )}
      {room > 0 && (
        <span class="room-chip">
          {session.roomName(room)}
          {state?.rooms_close_at && <Countdown until={state.rooms_close_at} />}
        </span>
      )}
      {room === 0 && host && state?.rooms_close_at && (
        <span class="room-chip">
          {t("call.rooms.open")} <Countdown until={state.rooms_close_at} />
        </span>
      )}
      {host && hands > 0 && (
        <button type="button" class="link" onClick={() => (session.panel.value = "people")}>
          {t("call.hands", { n: hands })}
        </button>
      )}
      <span class="call-header-actions">
        {room > 0 && !host && (
          <button
            type="button"
            class="secondary"
            onClick={() => void session.act("call.rooms.help")}
          >
            {t("call.rooms.help")}
          </button>
        )}
        {host && (
          <button
            type="button"
            class="secondary"
            aria-pressed={!!state?.recording}
            onClick={() => void session.act("call.record", { on: !state?.recording })}
          >
            {t(state?.recording ? "call.record.stop" : "call.record.start")}
          </button>
        )}
        {host && (
          <button
            type="button"
            class="danger"
            onClick={() =>
              confirmThen(t("call.end.confirm"), t("call.end"), () => void session.act("call.end"))
            }
          >
            {t("call.end")}
          </button>
        )}
      </span>
    </header>
  );
}

export function Controls({
  session,
  root,
}: {
  session: CallSession;
  root: () => HTMLElement | null;
}) {
  const problems = session.problems.value;
  const problem = (device: "mic" | "camera") => {
    const kind = problems[device];
    return kind && t(`call.problem.${kind}`, { device: t(`call.device.${device}`) });
  };
  const panel = session.panel.value;
  const toggle = (name: Exclude<Panel, null>) => () => {
    session.panel.value = panel === name ? null : name;
  };
  const hands = (session.people.value?.people ?? []).filter((p) => p.hand != null).length;
  const count = session.people.value?.people.length ?? 0;
  return (
    <nav class="call-controls" aria-label={t("call.controls")}>
      <Control
        icon="mic"
        label={t("call.mic")}
        pressed={session.mic.value}
        off={!session.mic.value}
        title={problem("mic")}
        onClick={() => void session.setMic(!session.mic.value)}
      />
      <Control
        icon="camera"
        label={t("call.camera")}
        pressed={session.camera.value}
        off={!session.camera.value}
        title={problem("camera")}
        onClick={() => void session.setCamera(!session.camera.value)}
      />
      <Control
        icon="screen"
        label={t("call.screen")}
        pressed={session.screen.value}
        disabled={!session.canScreen.value && !session.screen.value}
        title={session.canScreen.value ? undefined : t("call.screen.forbidden")}
        onClick={() => (session.screen.value ? session.stopScreen() : void session.startScreen())}
      />
      <Control
        icon="hand"
        label={t(session.hand.value ? "call.hand.lower" : "call.hand.raise")}
        pressed={session.hand.value}
        onClick={() => void session.act("call.hand", { raised: !session.hand.value })}
      />
      <Control
        icon="chat"
        label={t("call.chat")}
        pressed={panel === "chat"}
        onClick={toggle("chat")}
      />
      <Control
        icon="people"
        label={t("call.people")}
        pressed={panel === "people"}
        badge={hands ? `${count} · ${hands}` : count}
        onClick={toggle("people")}
      />
      <Control
        icon="board"
        label={t("call.board")}
        pressed={session.boardOpen.value}
        onClick={() => (session.boardOpen.value = !session.boardOpen.value)}
      />
      {session.host.value && (
        <Control
          icon="rooms"
          label={t("call.rooms")}
          pressed={panel === "rooms"}
          onClick={toggle("rooms")}
        />
      )}
      <Control
        icon={session.layout.value === "grid" ? "speaker" : "grid"}
        label={t(session.layout.value === "grid" ? "call.layout.speaker" : "call.layout.grid")}
        onClick={() => {
          session.layout.value = session.layout.value === "grid" ? "speaker" : "grid";
          if (session.layout.value === "grid") session.pinned.value = null;
        }}
      />
      <Control
        icon="settings"
        label={t("call.settings")}
        pressed={panel === "settings"}
        onClick={toggle("settings")}
      />
      <Control
        icon="minimise"
        label={t("call.minimise")}
        onClick={() => navigate(`/chat/${session.info.value?.chat_id ?? ""}`)}
      />
      {document.fullscreenEnabled && (
        <Control
          icon="fullscreen"
          label={t(fullscreen.value ? "call.fullscreen.exit" : "call.fullscreen")}
          pressed={fullscreen.value}
          onClick={() => {
            const change = fullscreen.value
              ? document.exitFullscreen()
              : root()?.requestFullscreen();
            change?.catch(() => undefined);
          }}
        />
      )}
      <Control icon="leave" label={t("call.leave")} danger onClick={() => void session.leave()} />
    </nav>
  );
}
