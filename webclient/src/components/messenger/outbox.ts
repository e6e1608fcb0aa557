// Messages on their way: shown at once, posted one after another in the order written,
// exactly once (the same client id on every retry), again as soon as the connection is
// back; gone when the server's copy arrives. A refusal stays visible with its reason.
import { effect, signal } from "@preact/signals";
import { ProtocolError } from "../../lib/protocol";
import { connection, online } from "../../lib/state";
import { errorText } from "./format";

export interface Outgoing {
  client_id: string;
  chat_id: number;
  text: string;
  reply_to?: number;
  attachments?: number[];
  poll?: object;
  /** names of the attached files, to show while sending */
  names: string[];
  error?: string;
}

export const outbox = signal<Outgoing[]>([]);
let queue = Promise.resolve();

function update(clientId: string, change: Partial<Outgoing> | null): void {
  outbox.value = outbox.value.flatMap((m) =>
    m.client_id !== clientId ? [m] : change ? [{ ...m, ...change }] : [],
  );
}

/** Resolves once the connection is open and resumed. */
function connected(): Promise<void> {
  return new Promise((resolve) => {
    const stop = effect(() => {
      if (online.value !== "open") return;
      resolve();
      queueMicrotask(() => stop());
    });
  });
}

async function post(message: Outgoing): Promise<void> {
  const { names: _, error: __, ...body } = message;
  for (;;) {
    await connected();
    try {
      await connection.request("chat.post", body);
      update(message.client_id, null);
      return;
    } catch (error) {
      if (error instanceof ProtocolError && error.code === "connection_lost") {
        // The socket may be closing while still counted open: give it a moment.
        await new Promise((resolve) => setTimeout(resolve, 300));
        continue;
      }
      update(message.client_id, { error: errorText(error) });
      return;
    }
  }
}

function enqueue(message: Outgoing): void {
  queue = queue.then(() => post(message));
}

export function send(message: Omit<Outgoing, "client_id">): void {
  const outgoing = { ...message, client_id: crypto.randomUUID() };
  outbox.value = [...outbox.value, outgoing];
  enqueue(outgoing);
}

export function retry(clientId: string): void {
  const message = outbox.value.find((m) => m.client_id === clientId);
  if (!message) return;
  update(clientId, { error: undefined });
  enqueue({ ...message, error: undefined });
}

export function discard(clientId: string): void {
  update(clientId, null);
}
