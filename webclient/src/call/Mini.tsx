// The lesson, minimised: a small floating window over the rest of the app while the call
// goes on. It has its own root so no other screen needs to know about it.
import { render } from "preact";
import { t } from "../lib/i18n";
import { navigate, path } from "../lib/router";
import { current } from "./session";
import { Tile, stageOf, tilesOf } from "./Tiles";
import { Icon } from "./ui";

function Mini() {
  const session = current.value;
  if (!session) return null;
  const phase = session.phase.value;
  const route = `/call/${session.id}`;
  if ((phase !== "live" && phase !== "joining") || path.value.split("?")[0] === route) return null;
  const stage = stageOf(session, tilesOf(session));
  return (
    <aside
      class="call-mini"
      aria-label={t("call.mini", { title: session.info.value?.title ?? "" })}
    >
      {stage && <Tile key={stage.key} session={session} tile={stage} />}
      <div class="call-mini-bar">
        <button
          type="button"
          class="icon-button"
          onClick={() => navigate(route)}
          aria-label={t("call.maximise")}
        >
          <Icon name="fullscreen" />
        </button>
        <button
          type="button"
          class={`icon-button${session.mic.value ? "" : " is-off"}`}
          aria-pressed={session.mic.value}
          aria-label={t("call.mic")}
          onClick={() => void session.setMic(!session.mic.value)}
        >
          <Icon name="mic" off={!session.mic.value} />
        </button>
        <button
          type="button"
          class="icon-button danger"
          aria-label={t("call.leave")}
          onClick={() => void session.leave()}
        >
          <Icon name="leave" />
        </button>
      </div>
    </aside>
  );
}

let mounted = false;

export function mountMini(): void {
  if (mounted) return;
  mounted = true;
  const root = document.createElement("div");
  root.id = "call-mini";
  document.body.append(root);
  render(<Mini />, root);
}
