// One message in a chat: author, the message it answers, text, attachments, poll,
// reactions, time and read state; and its actions (react, reply, edit, pin, delete).
import { useEffect, useRef, useState } from "preact/hooks";
import { phrases, t } from "../../lib/i18n";
import type { Attachment, ChatEvent, ChatInfo } from "../../lib/protocol";
import { connection, session } from "../../lib/state";
import { Attachments } from "./Attachments";
import { clock, dayOf, errorText, linkified, nameOf } from "./format";
import { Icon } from "./Icon";
import { Link } from "./Link";
import { PollView } from "./Poll";

phrases({
  "msg.actions": { ru: "Действия с сообщением", en: "Message actions" },
  "msg.reply": { ru: "Ответить", en: "Reply" },
  "msg.edit": { ru: "Изменить", en: "Edit" },
  "msg.delete": { ru: "Удалить у всех", en: "Delete for everyone" },
  "msg.delete_confirm": { ru: "Удалить сообщение у всех?", en: "Delete the message for everyone?" },
  "msg.yes": { ru: "Да, удалить", en: "Yes, delete" },
  "msg.pin": { ru: "Закрепить", en: "Pin" },
  "msg.unpin": { ru: "Открепить", en: "Unpin" },
  "msg.react": { ru: "Реакция {emoji}", en: "React {emoji}" },
  "msg.reaction": { ru: "{emoji} {n}: {who}", en: "{emoji} {n}: {who}" },
  "msg.deleted": { ru: "Сообщение удалено", en: "Message deleted" },
  "msg.edited": { ru: "изменено", en: "edited" },
  "msg.forwarded": { ru: "Переслано от {who}", en: "Forwarded from {who}" },
  "msg.reply_to": { ru: "Ответ на сообщение {who}", en: "Reply to {who}" },
  "msg.earlier": { ru: "Сообщение выше", en: "An earlier message" },
  "msg.sent": { ru: "Отправлено", en: "Sent" },
  "msg.read": { ru: "Прочитано", en: "Read" },
  "msg.read_by": { ru: "Прочитали: {n}", en: "Read by {n}" },
  "msg.pinned": { ru: "Закреплено", en: "Pinned" },
});

/** A lesson's card in its chat (protocol/calls.py CallInfo, what the card shows of it). */
interface Lesson {
  id: number;
  title: string;
  starts_at: number;
  ends_at: number;
  state: "scheduled" | "published" | "live" | "ended" | "cancelled";
}

phrases({
  "lesson.scheduled": { ru: "Урок {day}, {from}–{to}", en: "Lesson {day}, {from}–{to}" },
  "lesson.live": { ru: "Урок идёт", en: "The lesson is on" },
  "lesson.ended": { ru: "Урок закончился", en: "The lesson is over" },
  "lesson.cancelled": { ru: "Урок отменён", en: "The lesson was cancelled" },
  "lesson.open": { ru: "Открыть урок", en: "Open the lesson" },
});

function LessonCard({ lesson }: { lesson: Lesson }) {
  const over = lesson.state === "ended" || lesson.state === "cancelled";
  const when =
    lesson.state === "live" || over
      ? t(`lesson.${lesson.state}`)
      : t("lesson.scheduled", { day: dayOf(lesson.starts_at), from: clock(lesson.starts_at), to: clock(lesson.ends_at) });
  return (
    <div class={`lesson-card lesson-${lesson.state}`}>
      <p class="muted">{when}</p>
      {!over && (
        <Link href={`/call/${lesson.id}`} class="button">
          {t("lesson.open")}
        </Link>
      )}
    </div>
  );
}

export const REACTIONS = ["👍", "❤️", "😂", "😮", "😢", "🙏"];

/** What a message says in one line (replies, the pinned bar, the chat list). */
export function summary(e: ChatEvent): string {
  if (e.deleted) return t("msg.deleted");
  if (e.text) return e.text;
  if (e.poll) return `${t("poll.label")}: ${e.poll.question}`;
  const first = e.attachments?.[0];
  if (!first) return "";
  return first.kind === "document" ? first.name : t(`kind.${first.kind}`);
}

phrases({
  "kind.photo": { ru: "Фото", en: "Photo" },
  "kind.voice": { ru: "Голосовое сообщение", en: "Voice message" },
  "kind.video": { ru: "Видео", en: "Video" },
  "kind.audio": { ru: "Аудио", en: "Audio" },
});

export interface MessageProps {
  e: ChatEvent;
  info: ChatInfo;
  showAuthor: boolean;
  replied?: ChatEvent;
  /** other members who read up to here or further */
  readers: number;
  highlighted: boolean;
  onReply: (e: ChatEvent) => void;
  onEdit: (e: ChatEvent) => void;
  onJump: (seq: number) => void;
  onPhoto: (photo: Attachment) => void;
  onError: (message: string) => void;
}

export function Message(props: MessageProps) {
  const { e, info, replied } = props;
  const lesson = (e as ChatEvent & { lesson?: Lesson }).lesson;
  const me = session.value?.accountId;
  const mine = e.actor_id === me;
  const manager = info.role === "owner" || info.role === "admin";
  const [open, setOpen] = useState(false);
  const [confirming, setConfirming] = useState(false);
  const toggle = useRef<HTMLButtonElement>(null);
  const bar = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (open) bar.current?.querySelector("button")?.focus();
  }, [open, confirming]);

  const close = () => {
    setOpen(false);
    setConfirming(false);
    toggle.current?.focus();
  };
  const run = async (type: string, body: object = {}) => {
    close();
    try {
      await connection.request(type, { chat_id: e.chat_id, seq: e.seq, ...body });
    } catch (error) {
      props.onError(errorText(error));
    }
  };
  const react = (emoji: string) => {
    const on = !e.reactions?.find((r) => r.emoji === emoji)?.accounts.includes(me ?? 0);
    run("chat.react", { emoji, on });
  };

  const classes = ["msg", mine ? "mine" : "theirs", props.highlighted ? "highlight" : ""];
  if (e.deleted) {
    return (
      <article class={classes.join(" ")} data-seq={e.seq} tabIndex={-1}>
        <p class="deleted">{t("msg.deleted")}</p>
        <span class="meta">{clock(e.at)}</span>
      </article>
    );
  }
  return (
    <article
      class={classes.join(" ")}
      data-seq={e.seq}
      tabIndex={-1}
      aria-label={mine ? undefined : nameOf(e.actor_id)}
      onKeyDown={(ev) => ev.key === "Escape" && open && (ev.stopPropagation(), close())}
    >
      {props.showAuthor && !mine && <p class="author">{nameOf(e.actor_id)}</p>}
      {e.forwarded && <p class="muted forwarded">{t("msg.forwarded", { who: nameOf(e.forwarded.actor_id) })}</p>}
      {e.reply_to !== undefined && (
        <button type="button" class="quote" onClick={() => props.onJump(e.reply_to!)}>
          <span class="visually-hidden">{t("msg.reply_to", { who: replied ? nameOf(replied.actor_id) : "" })}: </span>
          <strong aria-hidden="true">{replied ? nameOf(replied.actor_id) : t("msg.earlier")}</strong>
          <span>{replied ? summary(replied) : ""}</span>
        </button>
      )}
      {e.text && <p class="text">{linkified(e.text)}</p>}
      {lesson && <LessonCard lesson={lesson} />}
      {e.attachments && <Attachments items={e.attachments} onPhoto={props.onPhoto} />}
      {e.poll && <PollView e={e} canClose={mine || manager} onError={props.onError} />}
      {!!e.reactions?.length && (
        <div class="reactions">
          {e.reactions.map((r) => (
            <button
              type="button"
              key={r.emoji}
              class={`reaction${r.accounts.includes(me ?? 0) ? " own" : ""}`}
              aria-pressed={r.accounts.includes(me ?? 0)}
              aria-label={t("msg.reaction", {
                emoji: r.emoji,
                n: r.accounts.length,
                who: r.accounts.map((a) => nameOf(a)).join(", "),
              })}
              onClick={() => react(r.emoji)}
            >
              {r.emoji} {r.accounts.length}
            </button>
          ))}
        </div>
      )}
      <div class="meta">
        {e.pinned && (
          <span role="img" title={t("msg.pinned")} aria-label={t("msg.pinned")}>
            <Icon name="pin" />
          </span>
        )}
        {e.edited_at && <span>{t("msg.edited")}</span>}
        <time dateTime={new Date(e.at).toISOString()}>{clock(e.at)}</time>
        {mine && (
          <span
            class={`ticks${props.readers ? " read" : ""}`}
            title={props.readers ? t("msg.read_by", { n: props.readers }) : t("msg.sent")}
            aria-label={props.readers ? t("msg.read") : t("msg.sent")}
          >
            {props.readers ? "✓✓" : "✓"}
          </span>
        )}
        <button
          type="button"
          class="more"
          ref={toggle}
          aria-expanded={open}
          aria-label={t("msg.actions")}
          onClick={() => (open ? close() : setOpen(true))}
        >
          ⋯
        </button>
      </div>
      {open && (
        <div class="msg-actions" role="group" aria-label={t("msg.actions")} ref={bar}>
          {confirming ? (
            <>
              <span>{t("msg.delete_confirm")}</span>
              <button type="button" class="danger" onClick={() => run("chat.delete_message")}>
                {t("msg.yes")}
              </button>
              <button type="button" class="secondary" onClick={close}>
                {t("common.cancel")}
              </button>
            </>
          ) : (
            <>
              {REACTIONS.map((emoji) => (
                <button
                  type="button"
                  class="emoji"
                  key={emoji}
                  aria-label={t("msg.react", { emoji })}
                  onClick={() => react(emoji)}
                >
                  {emoji}
                </button>
              ))}
              <button type="button" class="secondary" onClick={() => (close(), props.onReply(e))}>
                {t("msg.reply")}
              </button>
              {mine && e.text && (
                <button type="button" class="secondary" onClick={() => (close(), props.onEdit(e))}>
                  {t("msg.edit")}
                </button>
              )}
              {(manager || info.kind === "direct") && (
                <button type="button" class="secondary" onClick={() => run("chat.pin", { on: !e.pinned })}>
                  {t(e.pinned ? "msg.unpin" : "msg.pin")}
                </button>
              )}
              {(mine || manager) && (
                <button type="button" class="secondary" onClick={() => setConfirming(true)}>
                  {t("msg.delete")}
                </button>
              )}
            </>
          )}
        </div>
      )}
    </article>
  );
}
