// The lesson chat beside the video: the lesson's own chat, its history and new messages.
import { useEffect, useRef, useState } from "preact/hooks";
import { lang, t } from "../lib/i18n";
import { connection, loadHistory, people, timeline } from "../lib/state";
import type { CallSession } from "./session";

const HISTORY = 50;

export function ChatPanel({ session }: { session: CallSession }) {
  const chatId = session.info.value!.chat_id;
  const line = timeline(chatId);
  const [text, setText] = useState("");
  const [error, setError] = useState("");
  const list = useRef<HTMLOListElement>(null);

  useEffect(() => {
    loadHistory(chatId, undefined, HISTORY).catch(() => setError(t("call.chat.failed")));
  }, [chatId]);

  // Lesson cards are messages too; inside the lesson they say nothing new.
  const messages = line.value.filter(
    (e) => e.kind === "message" && !e.deleted && !(e as { lesson?: unknown }).lesson,
  );
  useEffect(() => {
    const element = list.current;
    if (element) element.scrollTop = element.scrollHeight;
  }, [messages.length]);

  const send = async (e: Event) => {
    e.preventDefault();
    const body = text.trim();
    if (!body) return;
    setText("");
    try {
      await connection.post({ chat_id: chatId, text: body });
    } catch (failure) {
      setText(body);
      setError((failure as Error).message);
    }
  };
  const time = new Intl.DateTimeFormat(lang.value, { hour: "2-digit", minute: "2-digit" });
  const me = session.myId();
  const author = (id: number) => {
    if (id === me) return t("call.you.short");
    const known = people.value.get(id);
    return session.people.value?.people.some((p) => p.account_id === id) || !known
      ? session.nameOf(id)
      : `${known.last_name} ${known.first_name}`;
  };
  return (
    <div class="call-chat">
      <ol class="call-messages" ref={list} aria-live="polite">
        {messages.length === 0 && <li class="muted">{t("call.chat.empty")}</li>}
        {messages.map((message) => (
          <li key={message.seq} class={message.actor_id === me ? "mine" : undefined}>
            <span class="author">{author(message.actor_id)}</span>{" "}
            <time class="muted">{time.format(message.at)}</time>
            <p>{message.text ?? (message.attachments?.length ? t("call.chat.attachment") : "")}</p>
          </li>
        ))}
      </ol>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <form class="call-chat-form" onSubmit={send}>
        <label class="visually-hidden" for="call-chat-text">
          {t("call.chat.message")}
        </label>
        <input
          id="call-chat-text"
          value={text}
          maxLength={10_000}
          placeholder={t("call.chat.message")}
          autoComplete="off"
          onInput={(e) => setText(e.currentTarget.value)}
        />
        <button type="submit" disabled={!text.trim()}>
          {t("call.chat.send")}
        </button>
      </form>
    </div>
  );
}
