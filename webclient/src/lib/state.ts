// The application's state: who is signed in, the connection, chats and their messages.
// Signals, so every screen re-renders exactly where something it shows changed.
import { type Signal, signal } from "@preact/signals";
import { ApiError, api } from "./api";
import { type ChatEvent, type ChatInfo, Connection, type Role } from "./protocol";

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
/** Whether the chat list came from the server once (an empty list is then really empty). */
export const chatsLoaded = signal(false);
/** Messages (and other events) of the chats that were opened, oldest first. */
const timelines = new Map<number, Signal<ChatEvent[]>>();
/** chat id → account id → when they last typed (ms) */
export const typing = signal<Map<number, Map<number, number>>>(new Map());
/** chat id → account id → read seq, from read marks */
export const readMarks = signal<Map<number, Map<number, number>>>(new Map());

export interface Person {
  last_name: string;
  first_name: string;
  middle_name?: string | null;
  sex?: "male" | "female" | null;
}
export interface Member extends Person {
  account_id: number;
  role: Role;
  read_seq?: number;
}
/** Everyone whose name we have seen (members of the chats that were looked at). */
export const people = signal<Map<number, Person>>(new Map());
/** chat id → its members, for the chats whose members were asked for */
export const members = signal<Map<number, Member[]>>(new Map());
/** chat id → when something last happened in it, and its last message (for the list) */
export const activity = signal<Map<number, { at: number; last?: ChatEvent }>>(new Map());
/** chat id → whether the server holds events older than the timeline's first */
export const olderExists = signal<Map<number, boolean>>(new Map());

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

let everOpen = false;
export const connection = new Connection(applyEvent, applyPush, (state) => {
  online.value = state === "open" ? "open" : state;
  // After a reconnect, counters and chats left while away come from the server again.
  if (state === "open" && everOpen) loadChats().catch(() => undefined);
  if (state === "open") everOpen = true;
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
    // My own joining is counted already in the chat pushed to me when I joined.
    const joined =
      event.kind === "member_added" && event.member_id !== session.value?.accountId
        ? 1
        : event.kind === "member_removed"
          ? -1
          : 0;
    let updated: ChatInfo = {
      ...info,
      last_seq: event.seq,
      unread,
      member_count: info.member_count + joined,
    };
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
  noteActivity(event);
  if (event.kind === "message") stoppedTyping(event.chat_id, event.actor_id);
  if (MEMBERSHIP.has(event.kind) && members.value.has(event.chat_id)) {
    loadMembers(event.chat_id).catch(() => undefined);
  }
  for (const listener of eventListeners) listener(event);
}

const MEMBERSHIP = new Set(["member_added", "member_removed", "role_changed"]);

/** The chat list's order and preview: messages and changes to the chat bump it; what
 * happens to a message (an edit, a reaction) changes the preview only. */
function noteActivity(event: ChatEvent): void {
  const seen = activity.value.get(event.chat_id);
  let next = seen;
  if (event.target === undefined) {
    next = { at: event.at, last: event.kind === "message" ? event : seen?.last };
  } else if (seen?.last && seen.last.seq === event.target) {
    next = { ...seen, last: changed(seen.last, event) };
  }
  if (next === seen || !next) return;
  const map = new Map(activity.value);
  map.set(event.chat_id, next);
  activity.value = map;
  if (next.last) knowAuthor(next.last);
}

const asking = new Set<number>();
/** Names come with a chat's members: ask for them when someone unknown writes. */
function knowAuthor(event: ChatEvent): void {
  if (!event.actor_id || people.value.has(event.actor_id) || asking.has(event.chat_id)) return;
  asking.add(event.chat_id);
  loadMembers(event.chat_id)
    .catch(() => undefined)
    .finally(() => asking.delete(event.chat_id));
}

function stoppedTyping(chatId: number, accountId: number): void {
  if (!typing.value.get(chatId)?.has(accountId)) return;
  const next = new Map(typing.value);
  const inChat = new Map(next.get(chatId));
  inChat.delete(accountId);
  next.set(chatId, inChat);
  typing.value = next;
}

function setReadMark(chatId: number, accountId: number, seq: number): void {
  const next = new Map(readMarks.value);
  const inChat = new Map(next.get(chatId) ?? []);
  if ((inChat.get(accountId) ?? 0) >= seq) return;
  inChat.set(accountId, seq);
  next.set(chatId, inChat);
  readMarks.value = next;
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

export function changed(message: ChatEvent, event: ChatEvent): ChatEvent {
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
    case "lesson_updated": {
      // A lesson card follows its lesson (scheduled, live, ended); call/types.ts types it.
      const { lesson } = event as { lesson?: unknown };
      return Object.assign({ ...message }, { lesson });
    }
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
    setReadMark(body.chat_id, body.account_id, body.seq);
    if (body.account_id === session.value?.accountId) readLocally(body.chat_id, body.seq);
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
  const result = await connection.request<{ chats: ChatInfo[]; last_messages?: ChatEvent[] }>(
    "chat.list",
  );
  const next = new Map<number, ChatInfo>();
  const seen = new Map(activity.value);
  const lastOf = new Map((result.last_messages ?? []).map((e) => [e.chat_id, e]));
  for (const info of result.chats) {
    next.set(info.id, info);
    if (!connection.cursors.has(info.id)) connection.cursors.set(info.id, info.last_seq);
    // What the list shows and sorts by, unless a live event already told us more.
    const have = seen.get(info.id);
    if (!have || have.at < (info.last_at ?? 0)) {
      const last = lastOf.get(info.id);
      seen.set(info.id, { at: info.last_at ?? 0, last });
      if (last) knowAuthor(last);
    }
  }
  activity.value = seen;
  chats.value = next;
  chatsLoaded.value = true;
}

export async function signOut(everywhere = false): Promise<void> {
  await api("POST", `/api/v1/auth/logout${everywhere ? "?all=1" : ""}`).catch(() => undefined);
  connection.stop();
  session.value = null;
  chats.value = new Map();
  chatsLoaded.value = false;
}

// --- the messenger's reads and writes ---------------------------------------------------

/** A page of history into the timeline: the latest page, or the one before ``beforeSeq``. */
export async function loadHistory(chatId: number, beforeSeq?: number, limit = 50): Promise<void> {
  const result = await connection.request<{ events: ChatEvent[]; has_more?: boolean }>(
    "chat.history",
    { chat_id: chatId, before_seq: beforeSeq, limit },
  );
  const line = timeline(chatId);
  line.value = combine(result.events, line.value);
  const more = new Map(olderExists.value);
  more.set(chatId, result.has_more === true);
  olderExists.value = more;
}

/** History shows messages as they stand now; the live events that came while it was read
 * are folded in again (folding is idempotent), so nothing is lost either way. */
function combine(page: ChatEvent[], line: ChatEvent[]): ChatEvent[] {
  const bySeq = new Map<number, ChatEvent>();
  for (const event of line) bySeq.set(event.seq, event);
  for (const event of page) bySeq.set(event.seq, event);
  let all = [...bySeq.values()].sort((a, b) => a.seq - b.seq);
  const fromPage = new Set(page.map((e) => e.seq));
  for (const event of line) {
    if (event.target === undefined || fromPage.has(event.seq)) continue;
    all = all.map((m) => (m.seq === event.target ? changed(m, event) : m));
  }
  return all;
}

/** After clearing the history for oneself. */
export function forgetTimeline(chatId: number): void {
  timeline(chatId).value = [];
  const more = new Map(olderExists.value);
  more.set(chatId, false);
  olderExists.value = more;
  const seen = activity.value.get(chatId);
  if (seen) {
    const map = new Map(activity.value);
    map.set(chatId, { at: seen.at });
    activity.value = map;
  }
}

export async function loadMembers(chatId: number): Promise<Member[]> {
  const result = await connection.request<{ members: Member[] }>("chat.members", {
    chat_id: chatId,
  });
  const known = new Map(people.value);
  for (const m of result.members) {
    known.set(m.account_id, {
      last_name: m.last_name,
      first_name: m.first_name,
      middle_name: m.middle_name,
      sex: m.sex,
    });
    if (m.read_seq) setReadMark(chatId, m.account_id, m.read_seq);
  }
  people.value = known;
  const map = new Map(members.value);
  map.set(chatId, result.members);
  members.value = map;
  return result.members;
}

/** Names of direct chats' peers for the chat list (the rest comes with ``chat.list``). */
export async function loadPreviews(): Promise<void> {
  for (const info of [...chats.value.values()]) {
    if (info.peer_id && !people.value.has(info.peer_id)) {
      await loadMembers(info.id).catch(() => undefined);
    }
  }
}

/** Tell the server how far this person has read, and count what is left. */
export async function markRead(chatId: number, seq: number): Promise<void> {
  const info = chats.value.get(chatId);
  if (!info || seq <= info.read_seq) return;
  readLocally(chatId, seq);
  await connection.request("chat.read", { chat_id: chatId, seq }).catch(() => undefined);
}

function readLocally(chatId: number, seq: number): void {
  const info = chats.value.get(chatId);
  if (!info || seq <= info.read_seq) return;
  const me = session.value?.accountId;
  const left =
    seq >= info.last_seq
      ? 0
      : (timelines.get(chatId)?.value ?? []).filter(
          (e) => e.kind === "message" && e.seq > seq && e.actor_id !== me && !e.deleted,
        ).length;
  setChat({ ...info, read_seq: seq, unread: Math.min(info.unread, left) });
}

/** A chat a request answered with (made, joined, opened), before its push arrives. */
export function addChat(info: ChatInfo): void {
  if (!chats.value.has(info.id)) setChat(info);
}

/** Local changes the server does not push back (mute is per person). */
export function patchChat(chatId: number, patch: Partial<ChatInfo>): void {
  const info = chats.value.get(chatId);
  if (info) setChat({ ...info, ...patch });
}
