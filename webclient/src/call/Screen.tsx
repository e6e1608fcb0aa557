// The route /call/:id: the waiting room, the lesson itself, and what is left after it.
import type { JSX } from "preact";
import { useRef } from "preact/hooks";
import { lang, t } from "../lib/i18n";
import { navigate } from "../lib/router";
import { ChatPanel } from "./Chat";
import { CallHeader, Controls } from "./Controls";
import { mountMini } from "./Mini";
import { PeoplePanel } from "./People";
import { RoomsPanel } from "./Rooms";
import { type CallSession, openCall } from "./session";
import { SettingsPanel } from "./Settings";
import { Stage } from "./Tiles";
import { ConfirmDialog, Icon, Panel } from "./ui";

export function CallRoute({ id }: { id: string }): JSX.Element {
  const callId = Number(id);
  if (!Number.isSafeInteger(callId) || callId < 1) return <Gone title="call.missing" />;
  mountMini();
  return <CallView session={openCall(callId)} />;
}

function CallView({ session }: { session: CallSession }) {
  switch (session.phase.value) {
    case "loading":
      return <p class="muted call-status">{t("call.loading")}</p>;
    case "waiting":
      return <Waiting session={session} />;
    case "joining":
    case "live":
      return <Live session={session} />;
    case "left":
      return <Gone title="call.left" session={session} again />;
    case "missing":
    case "error":
      return <Gone title="call.missing" detail={session.failure.value} />;
    default:
      return <Gone title={`call.${session.phase.value}`} session={session} />;
  }
}

function when(ms: number): string {
  return new Intl.DateTimeFormat(lang.value, { dateStyle: "long", timeStyle: "short" }).format(ms);
}

function Waiting({ session }: { session: CallSession }) {
  const info = session.info.value!;
  const host = info.host_id === session.myId();
  return (
    <section class="card narrow call-waiting" aria-labelledby="call-waiting-title">
      <h1 id="call-waiting-title">{t("call.waiting")}</h1>
      <p class="call-title">{info.title}</p>
      <p>{t("call.starts", { time: when(info.starts_at) })}</p>
      {host ? (
        <button type="button" onClick={() => void session.join()}>
          {t("call.start")}
        </button>
      ) : (
        <p class="muted" role="status">
          {t("call.waiting.hint")}
        </p>
      )}
      {session.failure.value && (
        <p class="error" role="alert">
          {session.failure.value}
        </p>
      )}
    </section>
  );
}

function Gone({
  title,
  detail,
  session,
  again,
}: {
  title: string;
  detail?: string;
  session?: CallSession;
  again?: boolean;
}) {
  const info = session?.info.value;
  return (
    <section class="card narrow call-gone" aria-labelledby="call-gone-title">
      <h1 id="call-gone-title">{t(title)}</h1>
      {info && <p class="call-title">{info.title}</p>}
      {detail && <p class="muted">{detail}</p>}
      <div class="call-row">
        {again && session && (
          <button type="button" onClick={() => void session.load()}>
            {t("call.again")}
          </button>
        )}
        <button type="button" class="secondary" onClick={() => navigate("/")}>
          {t("call.to_chats")}
        </button>
      </div>
    </section>
  );
}

function Notices({ session }: { session: CallSession }) {
  return (
    <div class="call-notices" aria-live="polite">
      {session.audioBlocked.value && (
        <div class="call-notice">
          <span>{t("call.audio.blocked")}</span>
          <button type="button" onClick={() => session.unblockAudio()}>
            {t("call.audio.enable")}
          </button>
        </div>
      )}
      {session.notices.value.map((notice) => (
        <div class="call-notice" key={notice.id}>
          <span>{notice.text}</span>
          {notice.action && (
            <button
              type="button"
              onClick={() => {
                session.dismiss(notice.id);
                notice.action!.run();
              }}
            >
              {notice.action.label}
            </button>
          )}
          <button
            type="button"
            class="icon-button"
            aria-label={t("common.close")}
            onClick={() => session.dismiss(notice.id)}
          >
            <Icon name="close" />
          </button>
        </div>
      ))}
    </div>
  );
}

const PANELS = {
  chat: ChatPanel,
  people: PeoplePanel,
  rooms: RoomsPanel,
  settings: SettingsPanel,
};

function Live({ session }: { session: CallSession }) {
  const root = useRef<HTMLDivElement>(null);
  const panel = session.panel.value;
  const Content = panel && PANELS[panel];
  return (
    <div class={`call${panel ? " with-panel" : ""}`} ref={root}>
      <CallHeader session={session} />
      <div class="call-body">
        <div class="call-main">
          <Notices session={session} />
          {session.phase.value === "joining" ? (
            <p class="call-status" role="status">
              {t("call.joining")}
            </p>
          ) : (
            <Stage session={session} />
          )}
        </div>
        {Content && (
          <Panel
            id={`call-${panel}`}
            title={t(`call.${panel}`)}
            onClose={() => (session.panel.value = null)}
          >
            <Content session={session} />
          </Panel>
        )}
      </div>
      <Controls session={session} root={() => root.current} />
      <ConfirmDialog />
    </div>
  );
}
