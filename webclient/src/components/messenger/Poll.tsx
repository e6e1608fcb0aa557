// Polls: voting with the results shown beside each option, taking a vote back, closing;
// and the form that makes one.
import { useState } from "preact/hooks";
import { lang, phrases, plural, t } from "../../lib/i18n";
import type { ChatEvent } from "../../lib/protocol";
import { connection, session } from "../../lib/state";
import { errorText } from "./format";

phrases({
  "poll.label": { ru: "Опрос", en: "Poll" },
  "poll.anonymous": { ru: "анонимный", en: "anonymous" },
  "poll.multiple": { ru: "можно выбрать несколько", en: "several answers allowed" },
  "poll.closed": { ru: "Опрос закрыт", en: "The poll is closed" },
  "poll.votes": { ru: "{n} {word}", en: "{n} {word}" },
  "poll.vote": { ru: "Голосовать", en: "Vote" },
  "poll.retract": { ru: "Отменить голос", en: "Take my vote back" },
  "poll.close": { ru: "Закрыть опрос", en: "Close the poll" },
  "poll.option_result": { ru: "{option}: {pct}%", en: "{option}: {pct}%" },
  "poll.mine": { ru: "ваш выбор", en: "your choice" },
  "pollform.title": { ru: "Новый опрос", en: "New poll" },
  "pollform.question": { ru: "Вопрос", en: "Question" },
  "pollform.option": { ru: "Вариант {n}", en: "Option {n}" },
  "pollform.add": { ru: "+ Вариант", en: "+ Option" },
  "pollform.remove": { ru: "Убрать вариант {n}", en: "Remove option {n}" },
  "pollform.multiple": { ru: "Несколько ответов", en: "Several answers" },
  "pollform.anonymous": { ru: "Анонимный", en: "Anonymous" },
  "pollform.create": { ru: "Создать опрос", en: "Create the poll" },
});

/** What this person chose in anonymous polls (the server does not say; not kept). */
const chosenHere = new Map<string, number[]>();

export function PollView({ e, canClose, onError }: { e: ChatEvent; canClose: boolean; onError: (m: string) => void }) {
  const poll = e.poll!;
  const me = session.value?.accountId ?? 0;
  const key = `${e.chat_id}:${e.seq}`;
  const votes = poll.votes ?? poll.options.map(() => 0);
  const total = votes.reduce((a, b) => a + b, 0);
  const mine = poll.voters
    ? poll.voters.flatMap((who, i) => (who.includes(me) ? [i] : []))
    : (chosenHere.get(key) ?? []);
  const [picked, setPicked] = useState<number[]>([]);
  const closed = !!poll.closed;
  const run = async (type: string, body: object) => {
    try {
      await connection.request(type, { chat_id: e.chat_id, seq: e.seq, ...body });
    } catch (error) {
      onError(errorText(error));
    }
  };
  const vote = (options: number[]) => {
    chosenHere.set(key, options);
    setPicked([]);
    return run("chat.vote", { options });
  };
  const word =
    lang.value === "ru" ? plural(total, "голос", "голоса", "голосов") : total === 1 ? "vote" : "votes";
  return (
    <fieldset class="poll" disabled={closed}>
      <legend>
        {poll.question}
      </legend>
      <p class="muted poll-kind">
        {[t("poll.label"), poll.anonymous && t("poll.anonymous"), poll.multiple && t("poll.multiple")]
          .filter(Boolean)
          .join(", ")}
      </p>
      {poll.options.map((option, i) => {
        const pct = total ? Math.round((votes[i] / total) * 100) : 0;
        const chosen = mine.includes(i);
        const label = t("poll.option_result", { option, pct });
        const bar = (
          <span class="poll-bar" aria-hidden="true">
            <span style={{ width: `${pct}%` }} />
          </span>
        );
        return poll.multiple ? (
          <label class={`poll-option${chosen ? " chosen" : ""}`} key={i}>
            <input
              type="checkbox"
              checked={picked.includes(i) || (chosen && !picked.length)}
              onChange={(ev) => {
                const base = picked.length ? picked : mine;
                setPicked(ev.currentTarget.checked ? [...base, i] : base.filter((x) => x !== i));
              }}
            />
            <span class="poll-text">{label}</span>
            {bar}
          </label>
        ) : (
          <button
            type="button"
            key={i}
            class={`poll-option${chosen ? " chosen" : ""}`}
            aria-pressed={chosen}
            onClick={() => !chosen && vote([i])}
          >
            <span class="poll-text">
              {label}
              {chosen && <span class="muted"> · {t("poll.mine")}</span>}
            </span>
            {bar}
          </button>
        );
      })}
      <p class="muted poll-total">
        {t("poll.votes", { n: total, word })}
        {closed && ` · ${t("poll.closed")}`}
      </p>
      {!closed && (
        <div class="poll-actions">
          {poll.multiple && picked.length > 0 && (
            <button type="button" onClick={() => vote([...new Set(picked)].sort())}>
              {t("poll.vote")}
            </button>
          )}
          {mine.length > 0 && (
            <button type="button" class="secondary" onClick={() => vote([])}>
              {t("poll.retract")}
            </button>
          )}
          {canClose && (
            <button type="button" class="secondary" onClick={() => run("chat.close_poll", {})}>
              {t("poll.close")}
            </button>
          )}
        </div>
      )}
    </fieldset>
  );
}

export interface PollSpec {
  question: string;
  options: string[];
  multiple: boolean;
  anonymous: boolean;
}

export function PollForm({ onCreate, onCancel }: { onCreate: (spec: PollSpec) => void; onCancel: () => void }) {
  const [question, setQuestion] = useState("");
  const [options, setOptions] = useState(["", ""]);
  const [multiple, setMultiple] = useState(false);
  const [anonymous, setAnonymous] = useState(false);
  const filled = options.map((o) => o.trim()).filter(Boolean);
  return (
    <form
      class="poll-form"
      aria-label={t("pollform.title")}
      onSubmit={(e) => {
        e.preventDefault();
        if (question.trim() && filled.length >= 2) onCreate({ question: question.trim(), options: filled, multiple, anonymous });
      }}
    >
      <label>
        {t("pollform.question")}
        <input value={question} maxLength={200} required onInput={(e) => setQuestion(e.currentTarget.value)} />
      </label>
      {options.map((option, i) => (
        <div class="poll-form-option" key={i}>
          <label>
            {t("pollform.option", { n: i + 1 })}
            <input
              value={option}
              maxLength={200}
              required={i < 2}
              onInput={(e) => setOptions(options.map((o, j) => (j === i ? e.currentTarget.value : o)))}
            />
          </label>
          {options.length > 2 && (
            <button
              type="button"
              class="link"
              aria-label={t("pollform.remove", { n: i + 1 })}
              onClick={() => setOptions(options.filter((_, j) => j !== i))}
            >
              ✕
            </button>
          )}
        </div>
      ))}
      {options.length < 10 && (
        <button type="button" class="link" onClick={() => setOptions([...options, ""])}>
          {t("pollform.add")}
        </button>
      )}
      <label class="inline">
        <input type="checkbox" checked={multiple} onChange={(e) => setMultiple(e.currentTarget.checked)} />
        {t("pollform.multiple")}
      </label>
      <label class="inline">
        <input type="checkbox" checked={anonymous} onChange={(e) => setAnonymous(e.currentTarget.checked)} />
        {t("pollform.anonymous")}
      </label>
      <div class="row-actions">
        <button type="submit">{t("pollform.create")}</button>
        <button type="button" class="secondary" onClick={onCancel}>
          {t("common.cancel")}
        </button>
      </div>
    </form>
  );
}
