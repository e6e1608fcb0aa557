// Choosing people: only those one already shares a chat with (nobody is found by phone),
// and a button that asks before it does something that cannot be undone.
import { useEffect, useRef, useState } from "preact/hooks";
import { phrases, t } from "../../lib/i18n";
import { chats, loadMembers, members, type Person, session } from "../../lib/state";
import { fullName } from "./format";

phrases({
  "people.filter": { ru: "Найти человека", en: "Find a person" },
  "people.none": { ru: "Никого не нашлось", en: "Nobody found" },
  "people.more": { ru: "Показаны первые {n}: уточните поиск", en: "The first {n} are shown: narrow the search" },
  "people.legend": { ru: "Люди из ваших чатов", en: "People from your chats" },
  "confirm.yes": { ru: "Да", en: "Yes" },
  "confirm.no": { ru: "Нет", en: "No" },
});

const SHOWN = 60;

/** Everyone in the chats one is in, except oneself. */
export function usePeople(): [number, Person][] {
  useEffect(() => {
    (async () => {
      for (const info of [...chats.value.values()]) {
        if (info.kind !== "direct" && !members.value.has(info.id)) {
          await loadMembers(info.id).catch(() => undefined);
        }
      }
    })();
  }, [chats.value.size]);
  const me = session.value?.accountId;
  const found = new Map<number, Person>();
  for (const list of members.value.values()) {
    for (const m of list) if (m.account_id !== me) found.set(m.account_id, m);
  }
  return [...found].sort((a, b) => fullName(a[1]).localeCompare(fullName(b[1]), "ru"));
}

export function PeoplePicker({
  chosen,
  onChange,
  exclude = new Set<number>(),
}: {
  chosen: Set<number>;
  onChange: (chosen: Set<number>) => void;
  exclude?: Set<number>;
}) {
  const [filter, setFilter] = useState("");
  const needle = filter.trim().toLocaleLowerCase();
  const everyone = usePeople().filter(([id]) => !exclude.has(id));
  const matching = everyone.filter(([, p]) => fullName(p).toLocaleLowerCase().includes(needle));
  return (
    <fieldset class="people">
      <legend>{t("people.legend")}</legend>
      <label>
        {t("people.filter")}
        <input type="search" value={filter} onInput={(e) => setFilter(e.currentTarget.value)} />
      </label>
      <ul class="people-list">
        {matching.slice(0, SHOWN).map(([id, person]) => (
          <li key={id}>
            <label class="inline">
              <input
                type="checkbox"
                checked={chosen.has(id)}
                onChange={(e) => {
                  const next = new Set(chosen);
                  if (e.currentTarget.checked) next.add(id);
                  else next.delete(id);
                  onChange(next);
                }}
              />
              {fullName(person)}
            </label>
          </li>
        ))}
      </ul>
      {!matching.length && <p class="muted">{t("people.none")}</p>}
      {matching.length > SHOWN && <p class="muted">{t("people.more", { n: SHOWN })}</p>}
    </fieldset>
  );
}

/** A button that asks "are you sure?" in place before acting. */
export function Confirm({
  label,
  question,
  onConfirm,
}: {
  label: string;
  question: string;
  onConfirm: () => void;
}) {
  const [asking, setAsking] = useState(false);
  const yes = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (asking) yes.current?.focus();
  }, [asking]);
  if (!asking) {
    return (
      <button type="button" class="secondary" onClick={() => setAsking(true)}>
        {label}
      </button>
    );
  }
  return (
    <span class="confirm" role="group" aria-label={question}>
      <span>{question}</span>
      <button
        type="button"
        class="danger"
        ref={yes}
        onClick={() => {
          setAsking(false);
          onConfirm();
        }}
      >
        {t("confirm.yes")}
      </button>
      <button type="button" class="secondary" onClick={() => setAsking(false)}>
        {t("confirm.no")}
      </button>
    </span>
  );
}
