// Who is in the lesson and what they are doing; a host's actions on each of them.
import { useState } from "preact/hooks";
import { t } from "../lib/i18n";
import type { CallSession } from "./session";
import { type CallPerson, isHost } from "./types";
import { Icon, confirmThen } from "./ui";

/** Raised hands first, in the order they went up; then teachers; then by name. */
export function ordered(people: CallPerson[]): CallPerson[] {
  const rank = (p: CallPerson) => (p.role === "host" ? 0 : p.role === "cohost" ? 1 : 2);
  return [...people].sort(
    (a, b) =>
      (a.hand ?? Infinity) - (b.hand ?? Infinity) ||
      rank(a) - rank(b) ||
      a.name.localeCompare(b.name, "ru"),
  );
}

function Actions({ session, person }: { session: CallSession; person: CallPerson }) {
  const me = session.me.value;
  const mayScreen = !!person.can_screen;
  const moderate = (action: string) =>
    void session.act("call.moderate", { account_id: person.account_id, action });
  const items: [string, () => void, boolean?][] = [];
  if (person.mic) items.push(["call.mod.mute", () => moderate("mute")]);
  else items.push(["call.mod.ask_unmute", () => moderate("ask_unmute")]);
  if (person.camera) items.push(["call.mod.camera_off", () => moderate("camera_off")]);
  if (person.screen) items.push(["call.mod.stop_screen", () => moderate("stop_screen")]);
  if (person.hand != null) items.push(["call.mod.lower_hand", () => moderate("lower_hand")]);
  if (me?.role === "host") {
    const cohost = person.role === "cohost";
    items.push([
      cohost ? "call.mod.uncohost" : "call.mod.cohost",
      () => void session.act("call.set_role", { account_id: person.account_id, cohost: !cohost }),
    ]);
  }
  items.push([
    mayScreen ? "call.mod.forbid_screen" : "call.mod.allow_screen",
    () => void session.act("call.permit", { account_id: person.account_id, screen: !mayScreen }),
  ]);
  items.push([
    "call.mod.remove",
    () =>
      confirmThen(t("call.mod.remove.confirm", { name: person.name }), t("call.mod.remove"), () =>
        moderate("remove"),
      ),
    true,
  ]);
  return (
    <div class="person-actions">
      {items.map(([key, run, danger]) => (
        <button key={key} type="button" class={danger ? "danger" : "secondary"} onClick={run}>
          {t(key)}
        </button>
      ))}
    </div>
  );
}

export function PeoplePanel({ session }: { session: CallSession }) {
  const [open, setOpen] = useState<number | null>(null);
  const state = session.people.value;
  const me = session.me.value;
  const host = isHost(me);
  const people = ordered(state?.people ?? []);
  const rooms = (state?.rooms?.length ?? 0) > 0;
  const hands = people.some((p) => p.hand != null);
  return (
    <>
      {host && (
        <div class="panel-actions">
          <h3 class="panel-subtitle">{t("call.access")}</h3>
          <label class="inline">
            <input
              type="checkbox"
              checked={!!state?.screen_for_all}
              onChange={(e) => void session.act("call.permit", { screen: e.currentTarget.checked })}
            />
            {t("call.access.screen_all")}
          </label>
          <button
            type="button"
            class="secondary"
            disabled={!hands}
            onClick={() => void session.act("call.lower_hands")}
          >
            {t("call.hands.lower_all")}
          </button>
        </div>
      )}
      <ul class="call-people">
        {people.map((person) => {
          // A co-host acts on participants; the host on everyone but themselves.
          const actionable =
            host &&
            person.account_id !== me?.account_id &&
            (me?.role === "host" || person.role === "member");
          const expanded = open === person.account_id;
          return (
            <li key={person.account_id} data-account={person.account_id}>
              <div class="person">
                <span class="person-name">
                  {person.name}
                  {person.account_id === me?.account_id && ` ${t("call.you")}`}
                  {person.role !== "member" && (
                    <span class="call-badge call-role">{t(`call.role.${person.role}`)}</span>
                  )}
                  {rooms && (
                    <span class="muted person-room">{session.roomName(person.room ?? 0)}</span>
                  )}
                </span>
                <span class="person-state">
                  {person.hand != null && (
                    <span class="call-badge hand" title={t("call.hand.up")}>
                      <Icon name="hand" /> {person.hand}
                    </span>
                  )}
                  <span title={t(person.mic ? "call.mic.on" : "call.mic.off")}>
                    <Icon name="mic" off={!person.mic} />
                    <span class="visually-hidden">
                      {t(person.mic ? "call.mic.on" : "call.mic.off")}
                    </span>
                  </span>
                  <span title={t(person.camera ? "call.camera.on" : "call.camera.off")}>
                    <Icon name="camera" off={!person.camera} />
                    <span class="visually-hidden">
                      {t(person.camera ? "call.camera.on" : "call.camera.off")}
                    </span>
                  </span>
                  {person.screen && (
                    <span title={t("call.screen.on")}>
                      <Icon name="screen" />
                      <span class="visually-hidden">{t("call.screen.on")}</span>
                    </span>
                  )}
                  {actionable && (
                    <button
                      type="button"
                      class="icon-button"
                      aria-expanded={expanded}
                      aria-label={t("call.mod.menu", { name: person.name })}
                      onClick={() => setOpen(expanded ? null : person.account_id)}
                    >
                      <Icon name="more" />
                    </button>
                  )}
                </span>
              </div>
              {actionable && expanded && <Actions session={session} person={person} />}
            </li>
          );
        })}
      </ul>
    </>
  );
}
