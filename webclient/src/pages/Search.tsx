// Search (/search?q=…): chats by name, and messages in every chat one is in (the server
// searches with Russian word forms); a result opens its chat at that message.
import { useEffect, useState } from "preact/hooks";
import { chatTitle, errorText, nameOf, when } from "../components/messenger/format";
import { Link } from "../components/messenger/Link";
import { summary } from "../components/messenger/Message";
import { phrases, t } from "../lib/i18n";
import type { ChatEvent } from "../lib/protocol";
import { navigate, query } from "../lib/router";
import { chats, connection, loadMembers, members, online } from "../lib/state";
import { ordered } from "./ChatList";

phrases({
  "search.title": { ru: "Поиск", en: "Search" },
  "search.label": { ru: "Что найти", en: "Search for" },
  "search.go": { ru: "Найти", en: "Search" },
  "search.chats": { ru: "Чаты", en: "Chats" },
  "search.messages": { ru: "Сообщения", en: "Messages" },
  "search.none": { ru: "Ничего не нашлось", en: "Nothing found" },
  "search.searching": { ru: "Ищем…", en: "Searching…" },
});

export function Search() {
  const q = query("q")?.trim() ?? "";
  const live = online.value === "open";
  const [input, setInput] = useState(q);
  const [found, setFound] = useState<ChatEvent[] | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    setInput(q);
    setFound(null);
    setError("");
    if (!q || !live) return;
    connection.request<{ events: ChatEvent[] }>("search", { query: q, limit: 50 }).then(
      async ({ events }) => {
        setFound(events);
        // Authors' names come with the members of their chats.
        for (const id of new Set(events.map((e) => e.chat_id))) {
          if (!members.value.has(id)) await loadMembers(id).catch(() => undefined);
        }
      },
      (failure) => setError(errorText(failure)),
    );
  }, [q, live]);

  const needle = q.toLocaleLowerCase();
  const matchingChats = needle
    ? ordered(chats.value.values()).filter((c) => chatTitle(c).toLocaleLowerCase().includes(needle))
    : [];

  return (
    <section class="search-page" aria-labelledby="search-title">
      <div class="page-head">
        <Link href="/" class="back" aria-label={t("chat.back")}>
          ←
        </Link>
        <h1 id="search-title">{t("search.title")}</h1>
      </div>
      <form
        role="search"
        class="search-row"
        onSubmit={(e) => {
          e.preventDefault();
          if (input.trim()) navigate(`/search?q=${encodeURIComponent(input.trim())}`, true);
        }}
      >
        <label class="grow">
          <span class="visually-hidden">{t("search.label")}</span>
          <input type="search" value={input} maxLength={200} onInput={(e) => setInput(e.currentTarget.value)} />
        </label>
        <button type="submit">{t("search.go")}</button>
      </form>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {matchingChats.length > 0 && (
        <>
          <h2>{t("search.chats")}</h2>
          <ul class="results">
            {matchingChats.map((c) => (
              <li key={c.id}>
                <Link href={`/chat/${c.id}`}>{chatTitle(c)}</Link>
              </li>
            ))}
          </ul>
        </>
      )}
      {q && (
        <>
          <h2>{t("search.messages")}</h2>
          <div role="status">
            {found === null && !error && <p class="muted">{t("search.searching")}</p>}
            {found?.length === 0 && !matchingChats.length && <p class="muted">{t("search.none")}</p>}
          </div>
          <ul class="results">
            {found?.map((e) => {
              const chat = chats.value.get(e.chat_id);
              return (
                <li key={`${e.chat_id}:${e.seq}`}>
                  <Link href={`/chat/${e.chat_id}?seq=${e.seq}`} class="result">
                    <span class="result-head">
                      <strong>{chat ? chatTitle(chat) : ""}</strong>
                      <span class="muted">
                        {nameOf(e.actor_id)} · {when(e.at)}
                      </span>
                    </span>
                    <span class="result-text">{summary(e)}</span>
                  </Link>
                </li>
              );
            })}
          </ul>
        </>
      )}
    </section>
  );
}
