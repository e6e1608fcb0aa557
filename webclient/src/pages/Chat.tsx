// A chat: its history (older pages load while scrolling up), live messages, the pinned bar,
// who is typing, read marks, and the composer.
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { PhotoViewer } from "../components/messenger/Attachments";
import { Composer } from "../components/messenger/Composer";
import { chatTitle, dayOf, errorText, memberCount, nameOf, serviceText } from "../components/messenger/format";
import { Icon } from "../components/messenger/Icon";
import { Link } from "../components/messenger/Link";
import { Message, summary } from "../components/messenger/Message";
import { discard, outbox, retry } from "../components/messenger/outbox";
import { phrases, t } from "../lib/i18n";
import type { Attachment, ChatEvent } from "../lib/protocol";
import { query } from "../lib/router";
import {
  chats,
  chatsLoaded,
  loadHistory,
  loadMembers,
  markRead,
  olderExists,
  online,
  readMarks,
  session,
  timeline,
  typing,
} from "../lib/state";

phrases({
  "chat.back": { ru: "К списку чатов", en: "Back to the chats" },
  "chat.info": { ru: "О чате", en: "About the chat" },
  "chat.messages": { ru: "Сообщения", en: "Messages" },
  "chat.loading": { ru: "Загрузка…", en: "Loading…" },
  "chat.start": { ru: "Это начало чата", en: "This is the start of the chat" },
  "chat.empty": { ru: "Сообщений пока нет. Напишите первым!", en: "No messages yet. Write the first one!" },
  "chat.missing": { ru: "Чат не найден, или вы в нём больше не участвуете.", en: "No such chat, or you are no longer in it." },
  "chat.typing_one": { ru: "{who} печатает…", en: "{who} is typing…" },
  "chat.typing_many": { ru: "{who} печатают…", en: "{who} are typing…" },
  "chat.pinned": { ru: "Закреплено", en: "Pinned" },
  "chat.pinned_n": { ru: "Закреплено ({i} из {n})", en: "Pinned ({i} of {n})" },
  "chat.new_below": { ru: "↓ Новые сообщения", en: "↓ New messages" },
  "chat.unread_from": { ru: "Непрочитанные сообщения", en: "Unread messages" },
  "chat.sending": { ru: "Отправляется…", en: "Sending…" },
  "chat.retry": { ru: "Повторить", en: "Retry" },
  "chat.discard": { ru: "Убрать", en: "Remove" },
  "chat.dismiss": { ru: "Скрыть сообщение об ошибке", en: "Dismiss the error" },
});

const TYPING_SHOWN_MS = 5000;
const GROUP_GAP_MS = 5 * 60_000;
const frame = () => new Promise((resolve) => requestAnimationFrame(() => resolve(undefined)));

export function Chat({ chatId }: { chatId: number }) {
  const info = chats.value.get(chatId);
  const line = timeline(chatId).value;
  const more = olderExists.value.get(chatId) ?? true;
  const live = online.value === "open";
  const me = session.value?.accountId ?? 0;
  const target = query("seq");
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState("");
  const [replyTo, setReplyTo] = useState<ChatEvent | null>(null);
  const [editing, setEditing] = useState<ChatEvent | null>(null);
  const [photo, setPhoto] = useState<Attachment | null>(null);
  const [highlight, setHighlight] = useState<number | null>(null);
  const [pinIndex, setPinIndex] = useState(0);
  const [newBelow, setNewBelow] = useState(false);
  const [, tick] = useState(0);
  const list = useRef<HTMLDivElement>(null);
  const atBottom = useRef(true);
  // While older history loads: the message that stays in place on screen.
  const anchor = useRef<{ seq: string; offset: number } | null>(null);
  const jumped = useRef<string | null>(null);
  const lastSeen = useRef(0);
  const fetching = useRef(false);
  // Where the reader stopped last time: the chat opens there when something is unread.
  const readAtOpen = useRef<number | null>(null);
  // Until the view is placed (at a message searched for, or the first unread), nothing is
  // scrolled to the end or counted as read.
  const placing = useRef(false);
  const [unreadFrom, setUnreadFrom] = useState<number | null>(null);
  if (readAtOpen.current === null && info) {
    readAtOpen.current = info.read_seq;
    placing.current = !!target || info.unread > 0;
    if (placing.current) atBottom.current = false;
  }

  const jump = async (seq: number) => {
    atBottom.current = false;
    const have = () => timeline(chatId).value.some((e) => e.seq <= seq);
    for (let pages = 0; !have() && (olderExists.value.get(chatId) ?? true) && pages < 50; pages++) {
      await loadHistory(chatId, timeline(chatId).value[0]?.seq, 200);
    }
    await frame();
    placing.current = false;
    const node = list.current?.querySelector<HTMLElement>(`[data-seq="${seq}"]`);
    if (!node) return toEnd();
    node.scrollIntoView({ block: "center" });
    node.focus({ preventScroll: true });
    onScroll();
    setHighlight(seq);
    setTimeout(() => setHighlight((h) => (h === seq ? null : h)), 2500);
  };

  /** Open at the first unread message, with a line above it (older pages as needed). */
  const reveal = async (readSeq: number) => {
    const have = () => timeline(chatId).value.some((e) => e.seq <= readSeq + 1);
    for (let pages = 0; !have() && (olderExists.value.get(chatId) ?? true) && pages < 5; pages++) {
      await loadHistory(chatId, timeline(chatId).value[0]?.seq, 200);
    }
    const first = timeline(chatId).value.find((e) => e.seq > readSeq && e.kind === "message" && e.actor_id !== me);
    placing.current = false;
    if (!first) return toEnd();
    setUnreadFrom(first.seq);
    await frame();
    const node = list.current?.querySelector(`[data-seq="${first.seq}"]`);
    (node?.previousElementSibling ?? node)?.scrollIntoView({ block: "start" });
    onScroll();
  };

  // Members (names, roles, read marks) and the latest page; again after a reconnect.
  const known = !!info;
  useEffect(() => {
    if (!live || !known) return;
    loadMembers(chatId).catch(() => undefined);
    (async () => {
      try {
        if (!timeline(chatId).value.length) await loadHistory(chatId);
        if (target && jumped.current !== target) {
          jumped.current = target;
          await jump(Number(target));
        } else if (placing.current) {
          await reveal(readAtOpen.current ?? 0);
        }
      } catch (failure) {
        setError(errorText(failure));
      }
    })();
  }, [chatId, live, target, known]);

  const noteRead = () => {
    const el = list.current;
    const events = timeline(chatId).value;
    if (!el || !events.length || placing.current || document.visibilityState !== "visible") return;
    let seq = events[events.length - 1].seq;
    if (!atBottom.current) {
      const seen = [...el.querySelectorAll<HTMLElement>("[data-seq]")].filter(
        (n) => n.offsetTop < el.scrollTop + el.clientHeight,
      );
      seq = Number(seen.at(-1)?.dataset.seq ?? 0);
    }
    markRead(chatId, seq);
  };

  useEffect(() => {
    document.addEventListener("visibilitychange", noteRead);
    return () => document.removeEventListener("visibilitychange", noteRead);
  }, [chatId]);

  // Keep the view where the reader is: at the end, or on the message they were looking at.
  useLayoutEffect(() => {
    const el = list.current;
    if (!el) return;
    const place = anchor.current;
    const node = place && el.querySelector<HTMLElement>(`[data-seq="${place.seq}"]`);
    if (node && place) el.scrollTop = node.offsetTop - place.offset;
    else if (atBottom.current) el.scrollTop = el.scrollHeight;
    const last = line[line.length - 1];
    if (last && last.seq > lastSeen.current) {
      if (lastSeen.current && !atBottom.current && last.kind === "message" && last.actor_id !== me) setNewBelow(true);
      lastSeen.current = last.seq;
    }
    noteRead();
  }, [line, outbox.value, info?.id]);

  const loadOlder = async () => {
    const el = list.current;
    const first = timeline(chatId).value[0];
    if (!el || !first || fetching.current) return;
    fetching.current = true;
    const top = [...el.querySelectorAll<HTMLElement>("[data-seq]")].find(
      (n) => n.offsetTop + n.offsetHeight > el.scrollTop,
    );
    anchor.current = top ? { seq: top.dataset.seq!, offset: top.offsetTop - el.scrollTop } : null;
    setLoading(true);
    try {
      await loadHistory(chatId, first.seq);
      await frame();
    } catch (failure) {
      setError(errorText(failure));
    } finally {
      anchor.current = null;
      fetching.current = false;
      setLoading(false);
    }
  };

  const onScroll = () => {
    const el = list.current!;
    atBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 48;
    if (atBottom.current) setNewBelow(false);
    if (el.scrollTop < 300 && more && live) loadOlder();
    noteRead();
  };

  const toEnd = () => {
    const el = list.current;
    atBottom.current = true;
    setNewBelow(false);
    if (el) el.scrollTop = el.scrollHeight;
  };

  const typers = [...(typing.value.get(chatId) ?? new Map<number, number>())]
    .filter(([who, at]) => who !== me && Date.now() - at < TYPING_SHOWN_MS)
    .map(([who]) => nameOf(who));
  useEffect(() => {
    if (!typers.length) return;
    const timer = setInterval(() => tick((n) => n + 1), 1000);
    return () => clearInterval(timer);
  }, [typers.length]);

  if (!info) {
    return (
      <section class="chat-missing card narrow">
        <p>{chatsLoaded.value ? t("chat.missing") : t("chat.loading")}</p>
        <Link href="/">{t("chat.back")}</Link>
      </section>
    );
  }

  const bySeq = new Map(line.map((e) => [e.seq, e]));
  const marks = readMarks.value.get(chatId);
  const readers = (seq: number) => {
    let n = 0;
    for (const [who, upTo] of marks ?? []) if (who !== me && upTo >= seq) n++;
    return n;
  };
  const pins = line.filter((e) => e.kind === "message" && e.pinned && !e.deleted);
  const pin = pins.length ? pins[pins.length - 1 - (pinIndex % pins.length)] : null;
  const sent = new Set(line.map((e) => e.client_id).filter(Boolean));
  const pending = outbox.value.filter((m) => m.chat_id === chatId && !sent.has(m.client_id));

  const items = [];
  let day = "";
  let author = -1;
  let lastAt = 0;
  for (const e of line) {
    const text = e.kind === "message" ? null : serviceText(e, info);
    if (e.kind !== "message" && !text) continue;
    const thisDay = dayOf(e.at);
    if (thisDay !== day) {
      items.push(
        <p class="day" key={`day-${e.seq}`}>
          <span>{thisDay}</span>
        </p>,
      );
      day = thisDay;
      author = -1;
    }
    if (text) {
      items.push(
        <p class="service" key={e.seq} data-seq={e.seq}>
          <span>{text}</span>
        </p>,
      );
      author = -1;
      continue;
    }
    if (e.seq === unreadFrom) {
      items.push(
        <p class="unread-line" key="unread">
          <span>{t("chat.unread_from")}</span>
        </p>,
      );
    }
    items.push(
      <Message
        key={e.seq}
        e={e}
        info={info}
        showAuthor={info.kind !== "direct" && (e.actor_id !== author || e.at - lastAt > GROUP_GAP_MS)}
        replied={e.reply_to !== undefined ? bySeq.get(e.reply_to) : undefined}
        readers={e.actor_id === me ? readers(e.seq) : 0}
        highlighted={highlight === e.seq}
        onReply={(m) => (setEditing(null), setReplyTo(m))}
        onEdit={(m) => (setReplyTo(null), setEditing(m))}
        onJump={jump}
        onPhoto={setPhoto}
        onError={setError}
      />,
    );
    author = e.actor_id;
    lastAt = e.at;
  }

  const typingText = typers.length
    ? t(typers.length === 1 ? "chat.typing_one" : "chat.typing_many", { who: typers.join(", ") })
    : "";

  return (
    <section class="chat-view" aria-labelledby="chat-title">
      <header class="chat-head">
        <Link href="/" class="back" aria-label={t("chat.back")}>
          ←
        </Link>
        <div class="chat-head-title">
          <h1 id="chat-title">{chatTitle(info)}</h1>
          <p class="muted" aria-live="polite">
            {typingText || (info.kind === "direct" ? "" : memberCount(info.member_count))}
          </p>
        </div>
        <Link href={`/chat/${chatId}/info`} class="button secondary" aria-label={t("chat.info")} title={t("chat.info")}>
          <Icon name="info" />
        </Link>
      </header>
      {pin && (
        <button
          type="button"
          class="pinned-bar"
          onClick={() => {
            jump(pin.seq);
            setPinIndex((i) => i + 1);
          }}
        >
          <Icon name="pin" />
          <strong>
            {pins.length > 1
              ? t("chat.pinned_n", { i: pins.length - (pinIndex % pins.length), n: pins.length })
              : t("chat.pinned")}
            :
          </strong>{" "}
          <span class="pinned-text">{summary(pin)}</span>
        </button>
      )}
      {error && (
        <p class="error banner" role="alert">
          <span>{error}</span>
          <button type="button" class="link" aria-label={t("chat.dismiss")} onClick={() => setError("")}>
            ✕
          </button>
        </p>
      )}
      <div class="messages" ref={list} onScroll={onScroll} role="log" aria-label={t("chat.messages")} tabIndex={0}>
        {loading && (
          <p class="muted center" role="status">
            {t("chat.loading")}
          </p>
        )}
        {!more && line.length > 0 && <p class="muted center">{t("chat.start")}</p>}
        {!more && !items.length && !pending.length && <p class="muted center">{t("chat.empty")}</p>}
        {items}
        {pending.map((m) => (
          <article class="msg mine pending" key={m.client_id}>
            {m.text && <p class="text">{m.text}</p>}
            {m.names.length > 0 && <p class="muted">{m.names.join(", ")}</p>}
            {m.poll && <p class="muted">{t("poll.label")}</p>}
            {m.error ? (
              <p class="error" role="alert">
                {m.error}{" "}
                <button type="button" class="link" onClick={() => retry(m.client_id)}>
                  {t("chat.retry")}
                </button>
                <button type="button" class="link" onClick={() => discard(m.client_id)}>
                  {t("chat.discard")}
                </button>
              </p>
            ) : (
              <p class="meta">{t("chat.sending")}</p>
            )}
          </article>
        ))}
      </div>
      {newBelow && (
        <button type="button" class="new-below" onClick={toEnd}>
          {t("chat.new_below")}
        </button>
      )}
      <Composer
        chatId={chatId}
        replyTo={replyTo}
        editing={editing}
        onDone={() => {
          setReplyTo(null);
          setEditing(null);
        }}
        onError={setError}
        onSent={toEnd}
      />
      {photo && <PhotoViewer photo={photo} onClose={() => setPhoto(null)} />}
    </section>
  );
}
