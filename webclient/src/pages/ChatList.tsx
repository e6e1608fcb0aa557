// The home screen: every chat, the school's own first, then by last activity, with unread
// counters that follow live messages; a filter that also searches messages; a new chat.
import { useEffect, useState } from "preact/hooks";
import { chatTitle, nameOf, when } from "../components/messenger/format";
import { Icon } from "../components/messenger/Icon";
import { Link } from "../components/messenger/Link";
import { summary } from "../components/messenger/Message";
import { phrases, t } from "../lib/i18n";
import type { ChatInfo } from "../lib/protocol";
import { navigate } from "../lib/router";
import { activity, chats, chatsLoaded, loadPreviews, markRead, online, session } from "../lib/state";

phrases({
  "list.title": { ru: "Чаты", en: "Chats" },
  "list.new": { ru: "+ Новый чат", en: "+ New chat" },
  "list.search": { ru: "Поиск по чатам и сообщениям", en: "Search chats and messages" },
  "list.search_messages": { ru: "Найти в сообщениях", en: "Search messages" },
  "list.read_all": { ru: "Прочитать все", en: "Mark all read" },
  "list.empty": {
    ru: "Чатов пока нет. Когда школа добавит вас в класс, чаты появятся здесь; можно создать и свой.",
    en: "No chats yet. Once the school adds you to a class, its chats appear here; you can also make your own.",
  },
  "list.nothing": { ru: "Таких чатов нет", en: "No such chats" },
  "list.unread": { ru: "непрочитанных: {n}", en: "{n} unread" },
  "list.muted": { ru: "без звука", en: "muted" },
  "list.school": { ru: "школа", en: "school" },
  "list.school_hint": { ru: "Чат из школьного журнала", en: "A chat from the school journal" },
  "list.chats": { ru: "Список чатов", en: "Chat list" },
});

/** The school's chats first, then the most recently active. */
export function ordered(all: Iterable<ChatInfo>): ChatInfo[] {
  const at = (info: ChatInfo) => activity.value.get(info.id)?.at ?? 0;
  return [...all].sort((a, b) => Number(!!b.system) - Number(!!a.system) || at(b) - at(a) || b.id - a.id);
}

export function ChatList() {
  const [filter, setFilter] = useState("");
  const live = online.value === "open";
  useEffect(() => {
    if (live) loadPreviews();
  }, [live, chats.value.size]);

  const needle = filter.trim().toLocaleLowerCase();
  const all = ordered(chats.value.values());
  const shown = needle ? all.filter((c) => chatTitle(c).toLocaleLowerCase().includes(needle)) : all;
  const unread = all.filter((c) => c.unread > 0);
  const me = session.value?.accountId;

  return (
    <section class="chat-list-page" aria-labelledby="list-title">
      <div class="page-head">
        <h1 id="list-title">{t("list.title")}</h1>
        {unread.length > 0 && (
          <button type="button" class="secondary" onClick={() => unread.forEach((c) => markRead(c.id, c.last_seq))}>
            {t("list.read_all")}
          </button>
        )}
        <Link href="/new" class="button">
          {t("list.new")}
        </Link>
      </div>
      <form
        role="search"
        class="search-row"
        onSubmit={(e) => {
          e.preventDefault();
          if (needle) navigate(`/search?q=${encodeURIComponent(filter.trim())}`);
        }}
      >
        <label class="grow">
          <span class="visually-hidden">{t("list.search")}</span>
          <input
            type="search"
            value={filter}
            placeholder={t("list.search")}
            onInput={(e) => setFilter(e.currentTarget.value)}
          />
        </label>
        <button type="submit" class="secondary" disabled={!needle}>
          {t("list.search_messages")}
        </button>
      </form>
      {chatsLoaded.value && !all.length && <p class="muted">{t("list.empty")}</p>}
      {needle && !shown.length && all.length > 0 && <p class="muted">{t("list.nothing")}</p>}
      <ul class="chat-list" aria-label={t("list.chats")}>
        {shown.map((info) => {
          const seen = activity.value.get(info.id);
          const last = seen?.last;
          const title = chatTitle(info);
          const named = last && !last.deleted && (info.kind !== "direct" || last.actor_id === me);
          const who = named ? `${nameOf(last.actor_id)}: ` : "";
          return (
            <li key={info.id}>
              <Link href={`/chat/${info.id}`} class={`chat-row${info.unread ? " has-unread" : ""}`}>
                <span class={`avatar${info.system ? " school" : ""}`} aria-hidden="true">
                  {title.trim().charAt(0).toUpperCase() || "#"}
                </span>
                <span class="chat-main">
                  <span class="chat-title">
                    {title}
                    {info.system && (
                      <span class="tag" title={t("list.school_hint")}>
                        {t("list.school")}
                      </span>
                    )}
                  </span>
                  <span class="chat-preview">{last ? who + summary(last) : " "}</span>
                </span>
                <span class="chat-side">
                  {seen?.at ? <time dateTime={new Date(seen.at).toISOString()}>{when(seen.at)}</time> : null}
                  {info.muted && (
                    <span role="img" aria-label={t("list.muted")} title={t("list.muted")}>
                      <Icon name="muted" />
                    </span>
                  )}
                  {info.unread > 0 && (
                    <span class={`badge${info.muted ? " quiet" : ""}`} aria-label={t("list.unread", { n: info.unread })}>
                      {info.unread}
                    </span>
                  )}
                </span>
              </Link>
            </li>
          );
        })}
      </ul>
    </section>
  );
}
