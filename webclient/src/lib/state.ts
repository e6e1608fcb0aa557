// The application's state: who is signed in, the connection, chats and their messages.
// Signals, so every screen re-renders exactly where something it shows changed.
import { type Signal, signal } from "@preact/signals";
import { ApiError, api } from "./api";
import { type ChatEvent, type ChatInfo, Connection } from "./protocol";

export interface Profile {
  account_id: number;
  last_name: string;
  first_name: string;
  middle_name?: string | null;
  birth_date: string;
  sex: "male" | "female";
}

/** undefined while loading; null when signed out; profile null until it is created. */
export const session = signal<{ accountId: number; profile: Profile | null } | null | undefined>(
  undefined,
);
export const online = signal<"connecting" | "open" | "closed">("connecting");
export const chats = signal<Map<number, ChatInfo>>(new Map());
/** Messages (and other events) of the chats that were opened, oldest first. */
const timelines = new Map<number, Signal<ChatEvent[]>>();
/** chat id → account id → when they last typed (ms) */
export const typing = signal<Map<number, Map<number, number>>>(new Map());
/** chat id → account id → read seq, from read marks */
export const readMarks = signal<Map<number, Map<number, number>>>(new Map());

type Listener = (type: string, body: any) => void;
const listeners = new Set<Listener>();
/** Other screens (the call) listen to pushes they care about. */
export function onPush(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}
const eventListeners = new Set<(event: ChatEvent) => void>();
export function onEvent(listener: (event: ChatEvent) => void): () => void {
  eventListeners.add(listener);
  return () => eventListeners.delete(listener);
}

export const connection = new Connection(applyEvent, applyPush, (state) => {
  online.value = state === "open" ? "open" : state;
});

export function timeline(chatId: number): Signal<ChatEvent[]> {
  let line = timelines.get(chatId);
  if (!line) {
    line = signal<ChatEvent[]>([]);
    timelines.set(chatId, line);
  }
  return line;
}

function setChat(info: ChatInfo): void {
  const next = new Map(chats.value);
  next.set(info.id, info);
  chats.value = next;
}

/** A live or resumed event: into the chat's timeline, and the chat list's counters. */
function applyEvent(event: ChatEvent): void {
  const info = chats.value.get(event.chat_id);
  const mine = event.actor_id === session.value?.accountId;
  if (info) {
    const unread = event.kind === "message" && !mine ? info.unread + 1 : info.unread;
    let updated: ChatInfo = { ...info, last_seq: event.seq, unread };
    if (event.kind === "renamed" && event.title) updated = { ...updated, title: event.title };
    if (event.kind === "settings" && event.closed !== undefined) {
      updated = { ...updated, closed: event.closed };
    }
    if (event.kind === "member_removed" && event.member_id === session.value?.accountId) {
      const next = new Map(chats.value);
      next.delete(event.chat_id);
      chats.value = next;
    } else setChat(updated);
  }
  const line = timelines.get(event.chat_id);
  if (line) line.value = merge(line.value, event);
  for (const listener of eventListeners) listener(event);
}

/** Fold an event into a timeline: messages are appended; edits, deletions, reactions,
 * pins and votes change the message they are about. */
export function merge(line: ChatEvent[], event: ChatEvent): ChatEvent[] {
  if (line.some((e) => e.seq === event.seq)) return line;
  const target = event.target;
  let next = line;
  if (target !== undefined) {
    next = line.map((m) => (m.seq === target ? changed(m, event) : m));
  }
  return [...next, event];
}

function changed(message: ChatEvent, event: ChatEvent): ChatEvent {
  switch (event.kind) {
    case "edited":
      return { ...message, text: event.text, edited_at: event.edited_at };
    case "deleted":
      return { ...message, deleted: true, text: undefined, attachments: undefined, poll: undefined };
    case "pinned":
    case "unpinned":
      return { ...message, pinned: event.kind === "pinned" };
    case "poll_vote":
    case "poll_closed":
      return { ...message, poll: event.poll };
    case "reaction_added":
    case "reaction_removed": {
      const reactions = (message.reactions ?? []).map((r) => ({ ...r, accounts: [...r.accounts] }));
      let entry = reactions.find((r) => r.emoji === event.emoji);
      if (!entry && event.kind === "reaction_added") {
        entry = { emoji: event.emoji ?? "", accounts: [] };
        reactions.push(entry);
      }
      if (entry) {
        entry.accounts = entry.accounts.filter((a) => a !== event.actor_id);
        if (event.kind === "reaction_added") entry.accounts.push(event.actor_id);
      }
      return { ...message, reactions: reactions.filter((r) => r.accounts.length) };
    }
    default:
      return message;
  }
}

function applyPush(type: string, body: any): void {
  if (type === "chat") setChat(body as ChatInfo);
  else if (type === "typing") {
    const next = new Map(typing.value);
    const inChat = new Map(next.get(body.chat_id) ?? []);
    inChat.set(body.account_id, Date.now());
    next.set(body.chat_id, inChat);
    typing.value = next;
  } else if (type === "read") {
    const next = new Map(readMarks.value);
    const inChat = new Map(next.get(body.chat_id) ?? []);
    inChat.set(body.account_id, body.seq);
    next.set(body.chat_id, inChat);
    readMarks.value = next;
  }
  for (const listener of listeners) listener(type, body);
}

/** Who is signed in (from the session cookie), then connect and load the chat list. */
export async function boot(): Promise<void> {
  try {
    const profile = await api<Profile>("GET", "/api/v1/profile");
    session.value = { accountId: profile.account_id, profile };
  } catch (error) {
    if (error instanceof ApiError && error.code === "profile_required") {
      session.value = { accountId: 0, profile: null };
      return;
    }
    session.value = null;
    return;
  }
  connection.start();
  await loadChats();
}

export async function loadChats(): Promise<void> {
  for (let attempt = 0; attempt < 50 && !connection.connected; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const result = await connection.request<{ chats: ChatInfo[] }>("chat.list");
  const next = new Map<number, ChatInfo>();
  for (const info of result.chats) {
    next.set(info.id, info);
    if (!connection.cursors.has(info.id)) connection.cursors.set(info.id, info.last_seq);
  }
  chats.value = next;
}

export async function signOut(everywhere = false): Promise<void> {
  await api("POST", `/api/v1/auth/logout${everywhere ? "?all=1" : ""}`).catch(() => undefined);
  connection.stop();
  session.value = null;
  chats.value = new Map();
}
