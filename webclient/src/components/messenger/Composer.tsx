// Writing in a chat: text (Enter sends, Shift+Enter breaks the line), replies and edits,
// files uploaded with progress, voice messages recorded in the browser, and polls.
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, upload } from "../../lib/api";
import { phrases, t } from "../../lib/i18n";
import type { ChatEvent } from "../../lib/protocol";
import { connection } from "../../lib/state";
import { duration, errorText, nameOf } from "./format";
import { Icon } from "./Icon";
import { summary } from "./Message";
import { send } from "./outbox";
import { PollForm } from "./Poll";

phrases({
  "composer.label": { ru: "Сообщение", en: "Message" },
  "composer.placeholder": { ru: "Сообщение…", en: "Message…" },
  "composer.send": { ru: "Отправить", en: "Send" },
  "composer.save": { ru: "Сохранить", en: "Save" },
  "composer.attach": { ru: "Прикрепить файлы", en: "Attach files" },
  "composer.poll": { ru: "Создать опрос", en: "Create a poll" },
  "composer.voice": { ru: "Записать голосовое сообщение", en: "Record a voice message" },
  "composer.replying": { ru: "Ответ {who}", en: "Replying to {who}" },
  "composer.editing": { ru: "Изменение сообщения", en: "Editing a message" },
  "composer.cancel_reply": { ru: "Отменить ответ", en: "Cancel the reply" },
  "composer.cancel_edit": { ru: "Отменить изменение", en: "Cancel editing" },
  "composer.remove_file": { ru: "Убрать {name}", en: "Remove {name}" },
  "composer.uploading": { ru: "Загрузка {name}: {pct}%", en: "Uploading {name}: {pct}%" },
  "composer.uploaded": { ru: "{name}: готово", en: "{name}: ready" },
  "composer.hint": { ru: "Enter — отправить, Shift+Enter — новая строка", en: "Enter sends, Shift+Enter starts a new line" },
  "voice.recording": { ru: "Идёт запись {time}", en: "Recording {time}" },
  "voice.send": { ru: "Отправить запись", en: "Send the recording" },
  "voice.cancel": { ru: "Отменить запись", en: "Cancel the recording" },
  "voice.denied": { ru: "Нет доступа к микрофону", en: "No access to the microphone" },
});

interface Staged {
  key: number;
  name: string;
  progress: number;
  id?: number;
  error?: string;
}

interface Recording {
  recorder: MediaRecorder;
  stream: MediaStream;
  chunks: Blob[];
  started: number;
}

let nextKey = 1;
const TYPING_EVERY_MS = 3000;

/** The kind a file is sent as; the server checks the bytes and may refuse it. */
function kindOf(file: File): string {
  if (/^image\/(jpeg|png|gif|webp|avif)$/.test(file.type)) return "photo";
  if (file.type.startsWith("video/")) return "video";
  if (file.type.startsWith("audio/")) return "audio";
  return "document";
}

export interface ComposerProps {
  chatId: number;
  replyTo: ChatEvent | null;
  editing: ChatEvent | null;
  onDone: () => void;
  onError: (message: string) => void;
  onSent: () => void;
}

export function Composer({ chatId, replyTo, editing, onDone, onError, onSent }: ComposerProps) {
  const [text, setText] = useState("");
  const [staged, setStaged] = useState<Staged[]>([]);
  const [polling, setPolling] = useState(false);
  const [recording, setRecording] = useState<Recording | null>(null);
  const [, tick] = useState(0);
  const area = useRef<HTMLTextAreaElement>(null);
  const picker = useRef<HTMLInputElement>(null);
  const lastTyping = useRef(0);

  useEffect(() => {
    setText(editing?.text ?? "");
    if (editing) area.current?.focus();
  }, [editing]);
  useEffect(() => {
    if (replyTo) area.current?.focus();
  }, [replyTo]);
  useEffect(() => {
    if (!recording) return;
    const timer = setInterval(() => tick((n) => n + 1), 250);
    return () => clearInterval(timer);
  }, [recording]);
  // Leaving the chat stops a recording.
  useEffect(() => () => recording?.stream.getTracks().forEach((track) => track.stop()), [recording]);

  const patch = (key: number, change: Partial<Staged> | null) =>
    setStaged((list) => list.flatMap((s) => (s.key !== key ? [s] : change ? [{ ...s, ...change }] : [])));

  /** Upload one file with progress; a picture or sound the server refuses as such goes as
   * a plain file instead. */
  const uploadOne = async (key: number, blob: Blob, kind: string, name: string): Promise<number> => {
    const progress = (fraction: number) => patch(key, { progress: fraction });
    try {
      return (await upload(chatId, blob, kind, name, progress)).id;
    } catch (error) {
      if (error instanceof ApiError && error.code === "unsupported_type" && kind !== "document" && kind !== "voice") {
        return (await upload(chatId, blob, "document", name, progress)).id;
      }
      throw error;
    }
  };

  const attach = (files: FileList | null) => {
    for (const file of files ? [...files] : []) {
      const key = nextKey++;
      setStaged((list) => [...list, { key, name: file.name, progress: 0 }]);
      uploadOne(key, file, kindOf(file), file.name).then(
        (id) => patch(key, { id, progress: 1 }),
        (error) => patch(key, { error: errorText(error) }),
      );
    }
  };

  const uploading = staged.some((s) => s.id === undefined && !s.error);
  const ready = staged.filter((s) => s.id !== undefined);

  const submit = async () => {
    const body = text.trim();
    if (editing) {
      if (!body || body === editing.text) return onDone();
      try {
        await connection.request("chat.edit", { chat_id: chatId, seq: editing.seq, text: body });
        setText("");
        onDone();
      } catch (error) {
        onError(errorText(error));
      }
      return;
    }
    if (uploading || (!body && !ready.length)) return;
    send({
      chat_id: chatId,
      text: body,
      reply_to: replyTo?.seq,
      attachments: ready.map((s) => s.id!),
      names: ready.map((s) => s.name),
    });
    setText("");
    setStaged([]);
    onDone();
    onSent();
  };

  const typed = (value: string) => {
    setText(value);
    const now = Date.now();
    if (value && !editing && now - lastTyping.current > TYPING_EVERY_MS) {
      lastTyping.current = now;
      connection.request("chat.typing", { chat_id: chatId }).catch(() => undefined);
    }
  };

  const record = async () => {
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      const type = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/mp4"].find((m) =>
        MediaRecorder.isTypeSupported(m),
      );
      const recorder = new MediaRecorder(stream, type ? { mimeType: type } : undefined);
      const chunks: Blob[] = [];
      recorder.ondataavailable = (e) => e.data.size && chunks.push(e.data);
      recorder.start(250);
      setRecording({ recorder, stream, chunks, started: Date.now() });
    } catch {
      onError(t("voice.denied"));
    }
  };

  const stopRecording = (keep: boolean) => {
    const current = recording;
    if (!current) return;
    setRecording(null);
    current.recorder.onstop = async () => {
      current.stream.getTracks().forEach((track) => track.stop());
      if (!keep) return;
      const mime = current.recorder.mimeType;
      const blob = new Blob(current.chunks, { type: mime });
      const name = `voice.${mime.includes("mp4") ? "m4a" : mime.includes("ogg") ? "ogg" : "webm"}`;
      const key = nextKey++;
      setStaged((list) => [...list, { key, name: t("kind.voice"), progress: 0 }]);
      try {
        const id = await uploadOne(key, blob, "voice", name);
        patch(key, null);
        send({ chat_id: chatId, text: "", attachments: [id], names: [t("kind.voice")] });
        onSent();
      } catch (error) {
        patch(key, { error: errorText(error) });
      }
    };
    current.recorder.stop();
  };

  if (polling) {
    return (
      <div class="composer">
        <PollForm
          onCancel={() => setPolling(false)}
          onCreate={(poll) => {
            setPolling(false);
            send({ chat_id: chatId, text: "", poll, names: [] });
            onSent();
          }}
        />
      </div>
    );
  }

  return (
    <div class="composer">
      {(replyTo || editing) && (
        <div class="composer-context">
          <span>
            <strong>{editing ? t("composer.editing") : t("composer.replying", { who: nameOf(replyTo!.actor_id) })}</strong>
            <span class="muted"> {summary((editing ?? replyTo)!)}</span>
          </span>
          <button
            type="button"
            class="link"
            aria-label={t(editing ? "composer.cancel_edit" : "composer.cancel_reply")}
            onClick={() => {
              setText("");
              onDone();
            }}
          >
            ✕
          </button>
        </div>
      )}
      {staged.length > 0 && (
        <ul class="staged">
          {staged.map((s) => (
            <li key={s.key}>
              <span class="staged-name">{s.name}</span>
              {s.error ? (
                <span class="error" role="alert">
                  {s.error}
                </span>
              ) : (
                <progress
                  max={1}
                  value={s.progress}
                  aria-label={
                    s.id === undefined
                      ? t("composer.uploading", { name: s.name, pct: Math.round(s.progress * 100) })
                      : t("composer.uploaded", { name: s.name })
                  }
                />
              )}
              <button
                type="button"
                class="link"
                aria-label={t("composer.remove_file", { name: s.name })}
                onClick={() => patch(s.key, null)}
              >
                ✕
              </button>
            </li>
          ))}
        </ul>
      )}
      {recording ? (
        <div class="composer-row recording" role="status">
          <span class="rec-dot" aria-hidden="true" />
          <span>{t("voice.recording", { time: duration(Date.now() - recording.started) })}</span>
          <button type="button" class="secondary" onClick={() => stopRecording(false)}>
            {t("voice.cancel")}
          </button>
          <button type="button" onClick={() => stopRecording(true)}>
            {t("voice.send")}
          </button>
        </div>
      ) : (
        <form
          class="composer-row"
          onSubmit={(e) => {
            e.preventDefault();
            submit();
          }}
        >
          {!editing && (
            <>
              <button type="button" class="icon" aria-label={t("composer.attach")} title={t("composer.attach")} onClick={() => picker.current?.click()}>
                <Icon name="attach" />
              </button>
              <input
                ref={picker}
                type="file"
                multiple
                hidden
                onChange={(e) => {
                  attach(e.currentTarget.files);
                  e.currentTarget.value = "";
                }}
              />
              <button type="button" class="icon" aria-label={t("composer.poll")} title={t("composer.poll")} onClick={() => setPolling(true)}>
                <Icon name="poll" />
              </button>
            </>
          )}
          <textarea
            ref={area}
            rows={1}
            value={text}
            aria-label={t("composer.label")}
            aria-describedby="composer-hint"
            placeholder={t("composer.placeholder")}
            maxLength={10000}
            onInput={(e) => typed(e.currentTarget.value)}
            onKeyDown={(e) => {
              if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
                e.preventDefault();
                submit();
              } else if (e.key === "Escape" && (editing || replyTo)) {
                setText("");
                onDone();
              }
            }}
          />
          <span id="composer-hint" class="visually-hidden">
            {t("composer.hint")}
          </span>
          {!editing && !text.trim() && !ready.length ? (
            <button type="button" class="icon" aria-label={t("composer.voice")} title={t("composer.voice")} onClick={record}>
              <Icon name="mic" />
            </button>
          ) : (
            <button
              type="submit"
              class="send"
              disabled={uploading}
              aria-label={t(editing ? "composer.save" : "composer.send")}
              title={t(editing ? "composer.save" : "composer.send")}
            >
              <Icon name="send" />
            </button>
          )}
        </form>
      )}
    </div>
  );
}
