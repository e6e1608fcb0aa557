// How the messenger writes names, times, sizes, errors and the chat's service lines.
import type { ComponentChildren } from "preact";
import { ApiError } from "../../lib/api";
import { lang, phrases, plural, t, tSex } from "../../lib/i18n";
import { type ChatEvent, type ChatInfo, ProtocolError } from "../../lib/protocol";
import { type Person, people, session } from "../../lib/state";

phrases({
  "person.me": { ru: "Вы", en: "You" },
  "person.unknown": { ru: "Участник {id}", en: "Member {id}" },
  "person.system": { ru: "Журнал", en: "The journal" },
  "chat.direct": { ru: "Личный чат", en: "Direct chat" },
  "day.today": { ru: "Сегодня", en: "Today" },
  "day.yesterday": { ru: "Вчера", en: "Yesterday" },
  "size.b": { ru: "{n} Б", en: "{n} B" },
  "size.kb": { ru: "{n} КБ", en: "{n} KB" },
  "size.mb": { ru: "{n} МБ", en: "{n} MB" },
  "members.count": { ru: "{n} {word}", en: "{n} {word}" },
  "svc.created": { ru: "Чат «{title}» создан", en: "Chat “{title}” created" },
  "svc.created_direct": { ru: "Начало переписки", en: "The conversation starts" },
  "svc.joined": { ru: "{who} — в чате", en: "{who} joined" },
  "svc.added": { ru: "{actor} добавил(а) {who}", en: "{actor} added {who}" },
  "svc.added_system": { ru: "{who} — в чате по списку журнала", en: "{who} joined from the journal's roster" },
  "svc.left": { ru: "{who} покинул(а) чат", en: "{who} left" },
  "svc.removed": { ru: "{actor} удалил(а) из чата {who}", en: "{actor} removed {who}" },
  "svc.removed_system": { ru: "{who} больше не в чате (по списку журнала)", en: "{who} left with the journal's roster" },
  "svc.admin": { ru: "{who} теперь администратор", en: "{who} is an admin now" },
  "svc.member": { ru: "{who} больше не администратор", en: "{who} is no longer an admin" },
  "svc.renamed": { ru: "Чат переименован: «{title}»", en: "Chat renamed “{title}”" },
  "svc.closed": { ru: "Чат стал закрытым: приглашают только администраторы", en: "The chat is closed: only admins invite" },
  "svc.opened": { ru: "Чат стал открытым", en: "The chat is open" },
  "svc.pinned": { ru: "{actor} закрепил(а) сообщение", en: "{actor} pinned a message" },
  "svc.added_me": { ru: "Вы добавили {who}", en: "You added {who}" },
  "svc.removed_me": { ru: "Вы удалили из чата {who}", en: "You removed {who}" },
  "svc.pinned_me": { ru: "Вы закрепили сообщение", en: "You pinned a message" },
  // By the actor's sex, from the profile (the forms above, with "(а)", when it is unknown).
  "svc.added.male": { ru: "{actor} добавил {who}", en: "{actor} added {who}" },
  "svc.added.female": { ru: "{actor} добавила {who}", en: "{actor} added {who}" },
  "svc.left.male": { ru: "{who} покинул чат", en: "{who} left" },
  "svc.left.female": { ru: "{who} покинула чат", en: "{who} left" },
  "svc.removed.male": { ru: "{actor} удалил из чата {who}", en: "{actor} removed {who}" },
  "svc.removed.female": { ru: "{actor} удалила из чата {who}", en: "{actor} removed {who}" },
  "svc.pinned.male": { ru: "{actor} закрепил сообщение", en: "{actor} pinned a message" },
  "svc.pinned.female": { ru: "{actor} закрепила сообщение", en: "{actor} pinned a message" },
  "svc.joined_me": { ru: "Вы вступили в чат", en: "You joined" },
  "svc.left_me": { ru: "Вы покинули чат", en: "You left" },
  "err.forbidden": { ru: "Это действие здесь не разрешено", en: "This is not allowed here" },
  "err.not_member": { ru: "Вы не участник этого чата", en: "You are not a member of this chat" },
  "err.not_found": { ru: "Не найдено", en: "Not found" },
  "err.rate_limited": { ru: "Слишком часто: подождите немного", en: "Too often: wait a little" },
  "err.connection_lost": { ru: "Нет связи с сервером", en: "No connection to the server" },
  "err.validation_failed": { ru: "Проверьте введённое", en: "Check what you entered" },
  "err.conflict": { ru: "Это уже невозможно", en: "This is no longer possible" },
  "err.body_too_large": { ru: "Файл слишком большой", en: "The file is too large" },
  "err.unsupported_type": { ru: "Такой файл не принимается", en: "This file is not accepted" },
  "err.too_late_to_edit": {
    ru: "Изменить уже нельзя: прошло слишком много времени",
    en: "Too late to edit this message",
  },
  "err.only_author_edits": { ru: "Изменять сообщение может только автор", en: "Only the author edits a message" },
  "err.only_author_deletes": {
    ru: "Удалять чужие сообщения могут только администраторы чата",
    en: "Only the chat's admins delete other people's messages",
  },
  "err.muted_by_moderator": {
    ru: "Модератор временно запретил вам писать в этом чате",
    en: "A moderator muted you in this chat for a while",
  },
  "err.cannot_write": { ru: "Этому человеку нельзя написать", en: "You cannot write to this person" },
  "err.share_a_chat": {
    ru: "Написать можно только тем, с кем у вас есть общий чат",
    en: "You can write only to people you share a chat with",
  },
  "err.invite_unknown": { ru: "Такой ссылки-приглашения нет", en: "This invite link does not exist" },
  "err.invite_expired": { ru: "Срок действия приглашения истёк", en: "This invite link has expired" },
  "err.invite_revoked": { ru: "Приглашение отозвано", en: "This invite link was revoked" },
  "err.poll_closed": { ru: "Опрос уже закрыт", en: "The poll is closed" },
  "err.owner": { ru: "Владельца чата нельзя удалить или понизить", en: "The owner cannot be removed or demoted" },
});

/** The server's messages (stable English) that deserve their own words. */
const KNOWN: Record<string, string> = {
  "too late to edit this message": "err.too_late_to_edit",
  "only the author edits a message": "err.only_author_edits",
  "only the author or the chat's admins delete": "err.only_author_deletes",
  "a moderator muted you in this chat for a while": "err.muted_by_moderator",
  "you cannot write to this person": "err.cannot_write",
  "you can write only to people you share a chat with": "err.share_a_chat",
  "this invite link does not exist": "err.invite_unknown",
  "this invite link has expired": "err.invite_expired",
  "this invite link was revoked": "err.invite_revoked",
  "the poll is closed": "err.poll_closed",
  "the owner cannot be removed": "err.owner",
  "the owner's role does not change": "err.owner",
};

/** What went wrong, in the reader's language, with the server's own words when no better
 * phrase exists (they name the rule that refused). */
export function errorText(error: unknown): string {
  if (error instanceof ProtocolError || error instanceof ApiError) {
    const known = KNOWN[error.message];
    if (known) return t(known);
    const byCode = `err.${error.code}`;
    const phrase = t(byCode);
    if (phrase === byCode) return error.message || t("common.error");
    return error.message && lang.value === "en" ? `${phrase} (${error.message})` : phrase;
  }
  return t("common.error");
}

export function fullName(p: Person): string {
  return [p.last_name, p.first_name, p.middle_name].filter(Boolean).join(" ");
}

/** How a person is named beside a message: last and first name; "You" for oneself. */
export function nameOf(accountId: number, me = true): string {
  if (accountId === 0) return t("person.system");
  const mine = accountId === session.value?.accountId;
  if (mine && me) return t("person.me");
  const person = mine ? session.value?.profile : people.value.get(accountId);
  return person ? `${person.last_name} ${person.first_name}` : t("person.unknown", { id: accountId });
}

export function chatTitle(info: ChatInfo): string {
  if (info.kind !== "direct") return info.title;
  return info.peer_id && people.value.has(info.peer_id) ? nameOf(info.peer_id) : t("chat.direct");
}

export function memberCount(n: number): string {
  const word =
    lang.value === "ru" ? plural(n, "участник", "участника", "участников") : n === 1 ? "member" : "members";
  return t("members.count", { n, word });
}

const locale = () => (lang.value === "ru" ? "ru-RU" : "en-GB");

export function clock(at: number): string {
  return new Date(at).toLocaleTimeString(locale(), { hour: "2-digit", minute: "2-digit" });
}

export function dayOf(at: number): string {
  const date = new Date(at);
  const today = new Date();
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (date.toDateString() === today.toDateString()) return t("day.today");
  if (date.toDateString() === yesterday.toDateString()) return t("day.yesterday");
  const sameYear = date.getFullYear() === today.getFullYear();
  return date.toLocaleDateString(locale(), {
    day: "numeric",
    month: "long",
    year: sameYear ? undefined : "numeric",
  });
}

/** Time for the chat list: today's clock, otherwise the date. */
export function when(at: number): string {
  const today = new Date().toDateString() === new Date(at).toDateString();
  return today ? clock(at) : new Date(at).toLocaleDateString(locale(), { day: "numeric", month: "short" });
}

export function fileSize(bytes: number): string {
  const fmt = (n: number) => n.toLocaleString(locale(), { maximumFractionDigits: 1 });
  if (bytes < 1024) return t("size.b", { n: bytes });
  if (bytes < 1024 * 1024) return t("size.kb", { n: fmt(bytes / 1024) });
  return t("size.mb", { n: fmt(bytes / 1024 / 1024) });
}

export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/** Events that show as a small centred line; null for those folded into a message. */
export function serviceText(e: ChatEvent, info?: ChatInfo): string | null {
  const who = e.member_id !== undefined ? nameOf(e.member_id, false) : "";
  const actor = nameOf(e.actor_id);
  // Russian verbs agree with "Вы" (one's own actions have their own phrases) or with the
  // actor's sex.
  const by = (key: string) =>
    e.actor_id === session.value?.accountId
      ? t(`${key}_me`, { actor, who })
      : tSex(key, people.value.get(e.actor_id)?.sex, { actor, who });
  switch (e.kind) {
    case "created":
      return info?.kind === "direct" || !e.title ? t("svc.created_direct") : t("svc.created", { title: e.title });
    case "member_added":
      if (e.actor_id === 0) return t("svc.added_system", { who });
      return by(e.actor_id === e.member_id ? "svc.joined" : "svc.added");
    case "member_removed":
      if (e.actor_id === 0) return t("svc.removed_system", { who });
      return by(e.actor_id === e.member_id ? "svc.left" : "svc.removed");
    case "role_changed":
      return t(e.role === "member" ? "svc.member" : "svc.admin", { who });
    case "renamed":
      return t("svc.renamed", { title: e.title ?? "" });
    case "settings":
      return e.closed === undefined ? null : t(e.closed ? "svc.closed" : "svc.opened");
    case "pinned":
      return by("svc.pinned");
    default:
      return null;
  }
}

const URL_RE = /\bhttps?:\/\/[^\s<>"]+[^\s<>".,;:!?)\]]/g;

/** Text with its web addresses as links (elements, never HTML). */
export function linkified(text: string): ComponentChildren[] {
  const parts: ComponentChildren[] = [];
  let last = 0;
  for (const found of text.matchAll(URL_RE)) {
    const start = found.index ?? 0;
    if (start > last) parts.push(text.slice(last, start));
    parts.push(
      <a href={found[0]} target="_blank" rel="noopener noreferrer">
        {found[0]}
      </a>,
    );
    last = start + found[0].length;
  }
  if (last < text.length) parts.push(text.slice(last));
  return parts;
}
