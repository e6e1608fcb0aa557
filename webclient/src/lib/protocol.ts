// The Parta wire protocol over one WebSocket (docs/protocol.md): msgpack frames
// [version, type, request id, body], requests answered by "ok"/"error", pushes with id 0.
// Like protocol/client.py: per-chat cursors, events delivered once and in order, a gap
// fetched with "sync", and after a reconnect every chat resumed from its cursor.
import { decode, encode } from "@msgpack/msgpack";

export const VERSION = 1;

export type Role = "owner" | "admin" | "member";

export interface Attachment {
  id: number;
  kind: string;
  mime: string;
  size: number;
  name: string;
  width?: number;
  height?: number;
  duration_ms?: number;
  waveform?: number[];
  thumbnail?: boolean;
}

export interface Poll {
  question: string;
  options: string[];
  multiple?: boolean;
  anonymous?: boolean;
  closed?: boolean;
  votes?: number[];
  voters?: number[][] | null;
}

export interface ChatEvent {
  chat_id: number;
  seq: number;
  kind: string;
  actor_id: number;
  at: number;
  client_id?: string;
  text?: string;
  member_id?: number;
  role?: Role;
  title?: string;
  target?: number;
  reply_to?: number;
  emoji?: string;
  mentions?: number[];
  attachments?: Attachment[];
  poll?: Poll;
  forwarded?: { actor_id: number; at: number };
  closed?: boolean;
  edited_at?: number;
  deleted?: boolean;
  reactions?: { emoji: string; accounts: number[] }[];
  pinned?: boolean;
}

export interface ChatInfo {
  id: number;
  kind: string;
  title: string;
  role: Role;
  member_count: number;
  last_seq: number;
  read_seq: number;
  unread: number;
  system?: boolean;
  closed?: boolean;
  muted?: boolean;
  peer_id?: number;
  last_at?: number;
}

export class ProtocolError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

type Pending = { resolve: (body: any) => void; reject: (error: Error) => void };
export type PushHandler = (type: string, body: any) => void;
export type StateHandler = (state: "connecting" | "open" | "closed", code?: number) => void;

export class Connection {
  private socket: WebSocket | null = null;
  private nextId = 1;
  private pending = new Map<number, Pending>();
  private resyncing = new Set<number>();
  private retryMs = 500;
  private stopped = false;
  /** chat id → last seq delivered to the application */
  readonly cursors = new Map<number, number>();

  constructor(
    private readonly onEvent: (event: ChatEvent) => void,
    private readonly onPush: PushHandler,
    private readonly onState: StateHandler,
  ) {}

  start(): void {
    this.stopped = false;
    this.open();
  }

  stop(): void {
    this.stopped = true;
    this.socket?.close(1000);
  }

  private open(): void {
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
    const socket = new WebSocket(url, "parta.v1");
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    this.onState("connecting");
    socket.onopen = async () => {
      this.retryMs = 500;
      try {
        // The session cookie authenticated the upgrade; resume what we know.
        await this.sync();
        this.onState("open");
      } catch (error) {
        console.warn("resume failed", error);
      }
    };
    socket.onmessage = (message) => this.frame(new Uint8Array(message.data as ArrayBuffer));
    socket.onclose = (close) => {
      for (const { reject } of this.pending.values()) {
        reject(new ProtocolError("connection_lost", `closed (${close.code})`));
      }
      this.pending.clear();
      this.socket = null;
      this.onState("closed", close.code);
      if (this.stopped || close.code === 4401) return;
      setTimeout(() => this.open(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, 15_000);
    };
  }

  get connected(): boolean {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  private frame(data: Uint8Array): void {
    const [, type, id, body] = decode(data) as [number, string, number, any];
    if (type === "ok" || type === "error") {
      const waiting = this.pending.get(id);
      if (!waiting) return;
      this.pending.delete(id);
      if (type === "ok") waiting.resolve(body);
      else waiting.reject(new ProtocolError(body.code, body.message));
    } else if (type === "event") {
      this.event(body as ChatEvent);
    } else {
      if (type === "chat" && !this.cursors.has(body.id)) this.cursors.set(body.id, body.last_seq);
      this.onPush(type, body);
    }
  }

  private event(event: ChatEvent): void {
    const last = this.cursors.get(event.chat_id) ?? event.seq - 1;
    if (event.seq <= last) return; // a resumed and a live copy overlapped
    if (event.seq > last + 1) {
      this.fillGap(event.chat_id);
      return;
    }
    this.cursors.set(event.chat_id, event.seq);
    this.onEvent(event);
  }

  private async fillGap(chatId: number): Promise<void> {
    if (this.resyncing.has(chatId)) return;
    this.resyncing.add(chatId);
    try {
      await this.request("sync", { cursors: [[chatId, this.cursors.get(chatId) ?? 0]] });
    } catch {
      // the next resume covers it
    } finally {
      this.resyncing.delete(chatId);
    }
  }

  /** Resume every known chat; chats new to us come as pushes and start from their end. */
  async sync(): Promise<void> {
    await this.request("sync", { cursors: [...this.cursors.entries()] });
  }

  request<T = any>(type: string, body: object = {}): Promise<T> {
    const socket = this.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      return Promise.reject(new ProtocolError("connection_lost", "not connected"));
    }
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      socket.send(encode([VERSION, type, id, body], { ignoreUndefined: true }));
    });
  }

  /** Post exactly once: retried with the same client id across reconnects. */
  async post(body: { chat_id: number; text?: string; [key: string]: unknown }): Promise<any> {
    const request = { client_id: crypto.randomUUID(), ...body };
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.request("chat.post", request);
      } catch (error) {
        if (!(error instanceof ProtocolError) || error.code !== "connection_lost" || attempt > 20) {
          throw error;
        }
        await new Promise((resolve) => setTimeout(resolve, Math.min(500 * 2 ** attempt, 5000)));
      }
    }
  }
}
