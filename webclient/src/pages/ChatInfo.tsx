// About a chat: its name, the person's own settings (mute, clear), invite links with a QR
// code, the members with their roles, and what the person's role lets them do.
import { useEffect, useState } from "preact/hooks";
import { chatTitle, dayOf, errorText, fullName, memberCount } from "../components/messenger/format";
import { Link } from "../components/messenger/Link";
import { Confirm, PeoplePicker } from "../components/messenger/People";
import { phrases, t } from "../lib/i18n";
import type { ChatInfo as Info, Role } from "../lib/protocol";
import { navigate } from "../lib/router";
import {
  addChat,
  chats,
  chatsLoaded,
  connection,
  forgetTimeline,
  loadMembers,
  members,
  onEvent,
  online,
  patchChat,
  session,
} from "../lib/state";

phrases({
  "info.title": { ru: "О чате", en: "About the chat" },
  "info.back": { ru: "Назад в чат", en: "Back to the chat" },
  "info.name": { ru: "Название чата", en: "Chat name" },
  "info.rename": { ru: "Переименовать", en: "Rename" },
  "info.settings": { ru: "Настройки", en: "Settings" },
  "info.mute": { ru: "Без звука: не уведомлять о новых сообщениях", en: "Muted: no notifications of new messages" },
  "info.closed_note": {
    ru: "Закрытый чат: приглашать участников и менять чат могут только администраторы.",
    en: "A closed chat: only admins invite people and change it.",
  },
  "info.closed": { ru: "Закрытый чат: приглашать и менять его могут только администраторы", en: "Closed: only admins invite and change it" },
  "info.system": {
    ru: "Этот чат ведёт школьный журнал: участники и название меняются в журнале.",
    en: "The school journal keeps this chat: its members and name change there.",
  },
  "info.invites": { ru: "Приглашения по ссылке", en: "Invite links" },
  "info.invite_ttl": { ru: "Срок действия", en: "Valid for" },
  "info.ttl_day": { ru: "1 день", en: "1 day" },
  "info.ttl_week": { ru: "7 дней", en: "7 days" },
  "info.ttl_month": { ru: "30 дней", en: "30 days" },
  "info.invite_create": { ru: "Создать ссылку", en: "Create a link" },
  "info.invite_new": {
    ru: "Ссылка создана. Она показывается только сейчас: скопируйте её или покажите QR-код.",
    en: "The link is made. It is shown only now: copy it or show the QR code.",
  },
  "info.invite_link": { ru: "Ссылка-приглашение", en: "Invite link" },
  "info.copy": { ru: "Скопировать", en: "Copy" },
  "info.copied": { ru: "Скопировано", en: "Copied" },
  "info.qr": { ru: "QR-код ссылки-приглашения", en: "QR code of the invite link" },
  "info.invite_row": { ru: "Ссылка …{id}: вступили {uses}, до {until}", en: "Link …{id}: {uses} joined, until {until}" },
  "info.invite_revoked": { ru: "отозвана", en: "revoked" },
  "info.invite_expired": { ru: "истекла", en: "expired" },
  "info.revoke": { ru: "Отозвать", en: "Revoke" },
  "info.members": { ru: "Участники", en: "Members" },
  "info.add": { ru: "Добавить участников", en: "Add members" },
  "info.add_chosen": { ru: "Добавить выбранных", en: "Add the chosen" },
  "role.owner": { ru: "владелец", en: "owner" },
  "role.admin": { ru: "администратор", en: "admin" },
  "role.member": { ru: "участник", en: "member" },
  "info.you": { ru: "(вы)", en: "(you)" },
  "info.write": { ru: "Написать", en: "Message" },
  "info.write_to": { ru: "Написать: {name}", en: "Message {name}" },
  "info.make_admin": { ru: "Сделать администратором", en: "Make admin" },
  "info.make_member": { ru: "Снять права администратора", en: "Remove admin rights" },
  "info.remove": { ru: "Удалить из чата", en: "Remove from the chat" },
  "info.remove_q": { ru: "Удалить {name} из чата?", en: "Remove {name} from the chat?" },
  "info.actions_for": { ru: "Действия: {name}", en: "Actions: {name}" },
  "info.yours": { ru: "Для вас", en: "Just for you" },
  "info.clear": { ru: "Очистить историю", en: "Clear the history" },
  "info.clear_q": { ru: "Очистить историю только у вас?", en: "Clear the history for you only?" },
  "info.cleared": { ru: "История очищена", en: "History cleared" },
  "info.leave": { ru: "Покинуть чат", en: "Leave the chat" },
  "info.leave_q": { ru: "Покинуть чат?", en: "Leave the chat?" },
  "info.done": { ru: "Готово", en: "Done" },
});

const TTLS: [number, string][] = [
  [86_400, "info.ttl_day"],
  [7 * 86_400, "info.ttl_week"],
  [30 * 86_400, "info.ttl_month"],
];

interface Invite {
  id: string;
  expires_at: number;
  uses: number;
  revoked?: boolean;
}

export function ChatInfo({ chatId }: { chatId: number }) {
  const info = chats.value.get(chatId);
  const live = online.value === "open";
  const [error, setError] = useState("");
  const [notice, setNotice] = useState("");
  const [invites, setInvites] = useState<Invite[]>([]);
  const [fresh, setFresh] = useState<string | null>(null);
  const [ttl, setTtl] = useState(7 * 86_400);
  const [title, setTitle] = useState(info?.title ?? "");
  const [adding, setAdding] = useState<Set<number> | null>(null);
  const [copied, setCopied] = useState(false);

  const editable = !!info && !info.system && info.kind !== "direct";
  const manager = info?.role === "owner" || info?.role === "admin";
  const mayChange = editable && (manager || !info?.closed);

  const refreshInvites = () =>
    connection
      .request<{ invites: Invite[] }>("invite.list", { chat_id: chatId })
      .then((r) => setInvites(r.invites), () => undefined);

  useEffect(() => {
    if (!live) return;
    loadMembers(chatId).catch((e) => setError(errorText(e)));
    if (mayChange) refreshInvites();
  }, [chatId, live, mayChange]);
  useEffect(() => setTitle(info?.title ?? ""), [info?.title]);
  // Someone joined (perhaps by a link): the invites' counts changed.
  useEffect(
    () =>
      onEvent((e) => {
        if (e.chat_id === chatId && e.kind === "member_added" && mayChange) refreshInvites();
      }),
    [chatId, mayChange],
  );

  if (!info) {
    return (
      <section class="card narrow">
        <p>{chatsLoaded.value ? t("chat.missing") : t("chat.loading")}</p>
        <Link href="/">{t("chat.back")}</Link>
      </section>
    );
  }

  const act = async (type: string, body: object, done?: () => void) => {
    setError("");
    setNotice("");
    try {
      await connection.request(type, { chat_id: chatId, ...body });
      done?.();
    } catch (failure) {
      setError(errorText(failure));
    }
  };
  const me = session.value?.accountId;
  const list = [...(members.value.get(chatId) ?? [])].sort(
    (a, b) => ROLE_ORDER[a.role] - ROLE_ORDER[b.role] || fullName(a).localeCompare(fullName(b), "ru"),
  );
  const link = fresh ? `${location.origin}/join/${fresh}` : "";

  return (
    <section class="chat-info" aria-labelledby="info-title">
      <div class="page-head">
        <Link href={`/chat/${chatId}`} class="back" aria-label={t("info.back")}>
          ←
        </Link>
        <div>
          <h1 id="info-title">{chatTitle(info)}</h1>
          <p class="muted">
            {t("info.title")} · {memberCount(info.member_count)}
          </p>
        </div>
      </div>
      {error && (
        <p class="error banner" role="alert">
          {error}
        </p>
      )}
      <p class="notice" role="status">
        {notice}
      </p>
      {info.system && <p class="muted">{t("info.system")}</p>}
      {editable && info.closed && !manager && <p class="muted">{t("info.closed_note")}</p>}

      {mayChange && (
        <form
          class="card"
          onSubmit={(e) => {
            e.preventDefault();
            act("chat.settings", { title }, () => setNotice(t("info.done")));
          }}
        >
          <label>
            {t("info.name")}
            <input value={title} maxLength={200} required onInput={(e) => setTitle(e.currentTarget.value)} />
          </label>
          <button type="submit" disabled={!title.trim() || title.trim() === info.title}>
            {t("info.rename")}
          </button>
        </form>
      )}

      <div class="card">
        <h2>{t("info.settings")}</h2>
        <label class="inline">
          <input
            type="checkbox"
            checked={!!info.muted}
            onChange={(e) => {
              const muted = e.currentTarget.checked;
              act("chat.mute", { muted }, () => patchChat(chatId, { muted }));
            }}
          />
          {t("info.mute")}
        </label>
        {editable && manager && (
          <label class="inline">
            <input
              type="checkbox"
              checked={!!info.closed}
              onChange={(e) => act("chat.settings", { closed: e.currentTarget.checked })}
            />
            {t("info.closed")}
          </label>
        )}
      </div>

      {mayChange && (
        <div class="card">
          <h2>{t("info.invites")}</h2>
          <form
            class="row-actions"
            onSubmit={(e) => {
              e.preventDefault();
              connection.request<Invite & { token: string }>("invite.create", { chat_id: chatId, ttl_s: ttl }).then(
                (made) => {
                  setFresh(made.token);
                  setCopied(false);
                  refreshInvites();
                },
                (failure) => setError(errorText(failure)),
              );
            }}
          >
            <label>
              {t("info.invite_ttl")}
              <select value={ttl} onChange={(e) => setTtl(Number(e.currentTarget.value))}>
                {TTLS.map(([seconds, key]) => (
                  <option value={seconds} key={seconds}>
                    {t(key)}
                  </option>
                ))}
              </select>
            </label>
            <button type="submit">{t("info.invite_create")}</button>
          </form>
          {fresh && (
            <div class="invite-new">
              <p>{t("info.invite_new")}</p>
              <label>
                {t("info.invite_link")}
                <input readOnly value={link} onFocus={(e) => e.currentTarget.select()} />
              </label>
              <button
                type="button"
                class="secondary"
                onClick={() => navigator.clipboard?.writeText(link).then(() => setCopied(true), () => undefined)}
              >
                {t(copied ? "info.copied" : "info.copy")}
              </button>
              <img class="qr" src={`/api/v1/invites/${fresh}/qr.svg`} alt={t("info.qr")} width={220} height={220} />
            </div>
          )}
          {invites.length > 0 && (
            <ul class="invites">
              {invites.map((invite) => {
                const expired = invite.expires_at <= Date.now();
                return (
                  <li key={invite.id}>
                    <span>
                      {t("info.invite_row", { id: invite.id.slice(0, 6), uses: invite.uses, until: dayOf(invite.expires_at) })}
                      {invite.revoked && ` · ${t("info.invite_revoked")}`}
                      {!invite.revoked && expired && ` · ${t("info.invite_expired")}`}
                    </span>
                    {!invite.revoked && !expired && (
                      <button
                        type="button"
                        class="secondary"
                        onClick={() => act("invite.revoke", { invite_id: invite.id }, refreshInvites)}
                      >
                        {t("info.revoke")}
                      </button>
                    )}
                  </li>
                );
              })}
            </ul>
          )}
        </div>
      )}

      <div class="card">
        <h2>
          {t("info.members")} <span class="muted">({list.length || info.member_count})</span>
        </h2>
        {mayChange &&
          (adding ? (
            <form
              onSubmit={async (e) => {
                e.preventDefault();
                for (const id of adding) await act("chat.add_member", { account_id: id });
                setAdding(null);
              }}
            >
              <PeoplePicker chosen={adding} onChange={setAdding} exclude={new Set(list.map((m) => m.account_id))} />
              <div class="row-actions">
                <button type="submit" disabled={!adding.size}>
                  {t("info.add_chosen")}
                </button>
                <button type="button" class="secondary" onClick={() => setAdding(null)}>
                  {t("common.cancel")}
                </button>
              </div>
            </form>
          ) : (
            <button type="button" class="secondary" onClick={() => setAdding(new Set())}>
              {t("info.add")}
            </button>
          ))}
        <ul class="members">
          {list.map((m) => {
            const name = fullName(m);
            const mine = m.account_id === me;
            const manageable = editable && manager && !mine && m.role !== "owner";
            return (
              <li key={m.account_id}>
                <span class="member-name">
                  {name} {mine && <span class="muted">{t("info.you")}</span>}
                  <span class={`role role-${m.role}`}>{t(`role.${m.role}`)}</span>
                </span>
                {!mine && (
                  <span class="row-actions" role="group" aria-label={t("info.actions_for", { name })}>
                    <button
                      type="button"
                      class="secondary"
                      aria-label={t("info.write_to", { name })}
                      onClick={() =>
                        connection.request<{ chat: Info }>("direct.open", { account_id: m.account_id }).then(
                          ({ chat }) => {
                            addChat(chat);
                            navigate(`/chat/${chat.id}`);
                          },
                          (failure) => setError(errorText(failure)),
                        )
                      }
                    >
                      {t("info.write")}
                    </button>
                    {manageable && (
                      <button
                        type="button"
                        class="secondary"
                        onClick={() =>
                          act("chat.set_role", {
                            account_id: m.account_id,
                            role: m.role === "admin" ? "member" : "admin",
                          })
                        }
                      >
                        {t(m.role === "admin" ? "info.make_member" : "info.make_admin")}
                      </button>
                    )}
                    {manageable && (
                      <Confirm
                        label={t("info.remove")}
                        question={t("info.remove_q", { name })}
                        onConfirm={() => act("chat.remove_member", { account_id: m.account_id })}
                      />
                    )}
                  </span>
                )}
              </li>
            );
          })}
        </ul>
      </div>

      <div class="card">
        <h2>{t("info.yours")}</h2>
        <div class="row-actions">
          <Confirm
            label={t("info.clear")}
            question={t("info.clear_q")}
            onConfirm={() =>
              act("chat.clear", {}, () => {
                forgetTimeline(chatId);
                patchChat(chatId, { unread: 0 });
                setNotice(t("info.cleared"));
              })
            }
          />
          {!info.system && (
            <Confirm
              label={t("info.leave")}
              question={t("info.leave_q")}
              onConfirm={() => act("chat.leave", {}, () => navigate("/"))}
            />
          )}
        </div>
      </div>
    </section>
  );
}

const ROLE_ORDER: Record<Role, number> = { owner: 0, admin: 1, member: 2 };
