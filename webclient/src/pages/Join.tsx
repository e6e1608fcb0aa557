// Joining a chat by an invite link (/join/<token>): where it leads (invite.preview), then
// joining, then on to the chat.
import { useEffect, useRef, useState } from "preact/hooks";
import { errorText } from "../components/messenger/format";
import { Link } from "../components/messenger/Link";
import { phrases, t } from "../lib/i18n";
import type { ChatInfo } from "../lib/protocol";
import { navigate } from "../lib/router";
import { addChat, connection, online } from "../lib/state";

phrases({
  "join.title": { ru: "Приглашение в чат", en: "An invitation to a chat" },
  "join.target": {
    ru: "Вас пригласили в чат «{title}» ({count}).",
    en: "You were invited to “{title}” ({count}).",
  },
  "join.members": { ru: "участников: {n}", en: "members: {n}" },
  "join.text": {
    ru: "После вступления участники чата увидят ваше имя.",
    en: "Once you join, its members see your name.",
  },
  "join.button": { ru: "Вступить в чат", en: "Join the chat" },
  "join.joined": { ru: "Вы в чате «{title}»", en: "You are in “{title}”" },
  "join.open": { ru: "Открыть чат", en: "Open the chat" },
  "join.home": { ru: "К списку чатов", en: "To the chats" },
});

export function Join({ token }: { token: string }) {
  const [chat, setChat] = useState<ChatInfo | null>(null);
  const [target, setTarget] = useState<{ title: string; member_count: number } | null>(null);
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const open = useRef<HTMLButtonElement>(null);
  useEffect(() => open.current?.focus(), [chat]);
  useEffect(() => {
    if (online.value !== "open" || target) return;
    connection
      .request<{ title: string; member_count: number }>("invite.preview", { token })
      .then(setTarget, (failure) => setError(errorText(failure)));
  }, [online.value, token]);
  const join = async () => {
    setError("");
    setBusy(true);
    try {
      const joined = (await connection.request<{ chat: ChatInfo }>("invite.join", { token })).chat;
      addChat(joined);
      setChat(joined);
    } catch (failure) {
      setError(errorText(failure));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section class="card narrow join-page" aria-labelledby="join-title">
      <h1 id="join-title">{chat ? t("join.joined", { title: chat.title }) : t("join.title")}</h1>
      {chat ? (
        <button type="button" ref={open} onClick={() => navigate(`/chat/${chat.id}`, true)}>
          {t("join.open")}
        </button>
      ) : (
        <>
          {target && (
            <p>
              {t("join.target", {
                title: target.title,
                count: t("join.members", { n: String(target.member_count) }),
              })}
            </p>
          )}
          <p>{t("join.text")}</p>
          <button type="button" disabled={busy || online.value !== "open"} onClick={join}>
            {t("join.button")}
          </button>
        </>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <p>
        <Link href="/">{t("join.home")}</Link>
      </p>
    </section>
  );
}
