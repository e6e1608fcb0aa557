// "Дневник": the journals one's educational profile is linked to (unlink after asking), and
// linking another one, which starts here and goes through the journal's own sign-in.
import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, api } from "../lib/api";
import { lang, phrases, t } from "../lib/i18n";
import { query } from "../lib/router";
import { loadChats } from "../lib/state";

phrases({
  "links.title": { ru: "Дневник", en: "Journal" },
  "links.hint": {
    ru: "Привяжите учебный профиль к электронному дневнику школы: чаты класса, учителей и родителей появятся в Parta сами.",
    en: "Link your educational profile to your school's electronic journal: the chats of your class, teachers and parents appear in Parta by themselves.",
  },
  "links.none": { ru: "Дневник пока не подключён.", en: "No journal is linked yet." },
  "links.as": { ru: "Вы в журнале: {name}", en: "You in the journal: {name}" },
  "links.since": { ru: "Привязан {date}", en: "Linked on {date}" },
  "links.unlink": { ru: "Отвязать", en: "Unlink" },
  "links.unlink.named": { ru: "Отвязать «{journal}»", en: "Unlink “{journal}”" },
  "links.unlink.ask": {
    ru: "Отвязать «{journal}»? Чаты этой школы пропадут из вашего списка. Привязать снова можно в любой момент.",
    en: "Unlink “{journal}”? This school's chats leave your list. You can link it again at any time.",
  },
  "links.unlink.yes": { ru: "Да, отвязать", en: "Yes, unlink" },
  "links.unlinked": { ru: "Дневник «{journal}» отвязан.", en: "“{journal}” is unlinked." },
  "links.linked": {
    ru: "Дневник «{journal}» подключён: чаты школы уже в списке чатов.",
    en: "“{journal}” is linked: the school's chats are in your chat list.",
  },
  "links.connect": { ru: "Подключить дневник", en: "Link a journal" },
  "links.connect.hint": {
    ru: "Выберите регион и электронный журнал вашей школы. Вы перейдёте на сайт журнала, войдёте там как обычно и вернётесь сюда.",
    en: "Choose the region and your school's electronic journal. You go to the journal's site, sign in there as usual and come back here.",
  },
  "links.region": { ru: "Регион", en: "Region" },
  "links.region.choose": { ru: "Выберите регион", en: "Choose the region" },
  "links.region.done": {
    ru: "Все журналы этого региона уже подключены.",
    en: "Every journal of this region is linked already.",
  },
  "links.journal": { ru: "Электронный журнал", en: "Electronic journal" },
  "links.journal.linked": { ru: "{journal} (уже подключён)", en: "{journal} (linked already)" },
  "links.continue": { ru: "Продолжить", en: "Continue" },
  "links.going": { ru: "Переходим на сайт журнала…", en: "Going to the journal's site…" },
  "links.no_journals": {
    ru: "К этому серверу пока не подключён ни один электронный журнал.",
    en: "No electronic journal is connected to this server yet.",
  },
  "links.retry": { ru: "Попробовать снова", en: "Try again" },
  "role.teacher": { ru: "учитель", en: "teacher" },
  "role.student": { ru: "ученик", en: "student" },
  "role.parent": { ru: "родитель", en: "parent" },
  "role.staff": { ru: "сотрудник", en: "staff" },
});

export interface PersonName {
  last_name: string;
  first_name: string;
  middle_name?: string | null;
}

interface Link {
  journal: { id: string; name: string; region: string };
  person: PersonName;
  /** RFC 3339; shown once the server sends it. */
  linked_at?: string;
}

interface Region {
  code: string;
  name: string;
  journals: { id: string; name: string }[];
}

export const fullName = (p: PersonName) =>
  [p.last_name, p.first_name, p.middle_name].filter(Boolean).join(" ");

export const locale = () => (lang.value === "ru" ? "ru-RU" : "en-GB");

/** A phrase with its {placeholders} filled by markup (names in bold, say). */
export function rich(key: string, parts: Record<string, ComponentChildren>) {
  return t(key)
    .split(/(\{\w+\})/)
    .map((piece) => {
      const name = /^\{(\w+)\}$/.exec(piece)?.[1];
      return name !== undefined && name in parts ? parts[name] : piece;
    });
}

export function Links() {
  const [links, setLinks] = useState<Link[] | null>(null);
  const [regions, setRegions] = useState<Region[] | null>(null);
  const [failed, setFailed] = useState(false);
  // the journal just unlinked, for the notice (kept as a name so the language can change)
  const [unlinkedName, setUnlinkedName] = useState("");
  const heading = useRef<HTMLHeadingElement>(null);

  const load = async () => {
    setFailed(false);
    try {
      const [mine, known] = await Promise.all([
        api<{ links: Link[] }>("GET", "/api/v1/links"),
        api<{ regions: Region[] }>("GET", "/api/v1/regions"),
      ]);
      setLinks(mine.links);
      setRegions(known.regions);
    } catch {
      setFailed(true);
    }
  };
  useEffect(() => {
    load();
  }, []);

  // Back from linking that started here: say which journal was linked, if it still is.
  const linkedNow = links?.find((l) => l.journal.id === query("linked"));
  const shown = unlinkedName
    ? t("links.unlinked", { journal: unlinkedName })
    : linkedNow
      ? t("links.linked", { journal: linkedNow.journal.name })
      : "";

  const linked = new Set((links ?? []).map((l) => l.journal.id));
  // Once every journal of the server is linked there is nothing left to connect.
  const unlinkedLeft = regions?.some((r) => r.journals.some((j) => !linked.has(j.id)));
  const unlinked = (link: Link) => {
    setLinks((current) => current && current.filter((l) => l.journal.id !== link.journal.id));
    setUnlinkedName(link.journal.name);
    heading.current?.focus();
    loadChats().catch(() => undefined);
  };

  return (
    <div class="links-page">
      <h1 ref={heading} tabIndex={-1}>
        {t("links.title")}
      </h1>
      <p class="muted">{t("links.hint")}</p>
      <p role="status" class="links-notice">
        {shown}
      </p>
      {failed ? (
        <p role="alert" class="error">
          {t("common.error")}{" "}
          <button type="button" class="secondary" onClick={load}>
            {t("links.retry")}
          </button>
        </p>
      ) : links === null || regions === null ? (
        <p class="muted">…</p>
      ) : (
        <>
          {links.length === 0 ? (
            <p>{t("links.none")}</p>
          ) : (
            <ul class="links-list">
              {links.map((link) => (
                <LinkItem key={link.journal.id} link={link} onGone={() => unlinked(link)} />
              ))}
            </ul>
          )}
          {(links.length === 0 || unlinkedLeft) && <Connect regions={regions} linked={linked} />}
        </>
      )}
    </div>
  );
}

function LinkItem({ link, onGone }: { link: Link; onGone: () => void }) {
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  const ask = useRef<HTMLButtonElement>(null);
  const yes = useRef<HTMLButtonElement>(null);
  const answered = useRef(false);
  // Keyboard focus follows the question: onto "yes" when asked, back to "Отвязать" on cancel.
  useEffect(() => {
    if (asking) yes.current?.focus();
    else if (answered.current) ask.current?.focus();
  }, [asking]);

  const journal = link.journal.name;
  const titleId = `link-${link.journal.id}`;
  const unlink = async () => {
    setBusy(true);
    setError("");
    try {
      await api("DELETE", `/api/v1/links/${encodeURIComponent(link.journal.id)}`);
      onGone();
    } catch (failure) {
      if (failure instanceof ApiError && failure.code === "not_found") onGone();
      else setError(t("common.error"));
      setBusy(false);
    }
  };
  const since = link.linked_at
    ? new Date(link.linked_at).toLocaleDateString(locale(), { dateStyle: "long" })
    : null;

  return (
    <li class="card links-item">
      <div class="links-about">
        <h2 id={titleId}>{journal}</h2>
        <p class="muted">{link.journal.region}</p>
        <p>{rich("links.as", { name: <strong>{fullName(link.person)}</strong> })}</p>
        {since && <p class="muted">{t("links.since", { date: since })}</p>}
      </div>
      {asking ? (
        <div class="links-ask" role="group" aria-labelledby={`${titleId}-ask`}>
          <p id={`${titleId}-ask`}>{t("links.unlink.ask", { journal })}</p>
          <div class="links-actions">
            <button type="button" class="danger" ref={yes} disabled={busy} onClick={unlink}>
              {t("links.unlink.yes")}
            </button>
            <button
              type="button"
              class="secondary"
              disabled={busy}
              onClick={() => {
                answered.current = true;
                setAsking(false);
              }}
            >
              {t("common.cancel")}
            </button>
          </div>
        </div>
      ) : (
        <button
          type="button"
          class="secondary"
          ref={ask}
          aria-label={t("links.unlink.named", { journal })}
          onClick={() => setAsking(true)}
        >
          {t("links.unlink")}
        </button>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </li>
  );
}

function Connect({ regions, linked }: { regions: Region[]; linked: Set<string> }) {
  // One choice is made for the person: a lone region, a lone journal not linked yet.
  const only = (code: string) => {
    const open = (regions.find((r) => r.code === code)?.journals ?? []).filter(
      (j) => !linked.has(j.id),
    );
    return open.length === 1 ? open[0].id : "";
  };
  const [code, setCode] = useState(regions.length === 1 ? regions[0].code : "");
  const [journalId, setJournalId] = useState(() => only(code));
  const [going, setGoing] = useState(false);
  const [error, setError] = useState("");
  const region = regions.find((r) => r.code === code);
  const done = region?.journals.every((j) => linked.has(j.id));

  const choose = (next: string) => {
    setCode(next);
    setJournalId(only(next));
  };
  const start = async (e: Event) => {
    e.preventDefault();
    setError("");
    setGoing(true);
    try {
      const { url } = await api<{ url: string }>("POST", "/api/v1/links/start", {
        journal_id: journalId,
      });
      // The journal signs the person in and sends them back to /api/v1/link, then /link/….
      location.assign(url);
    } catch {
      setError(t("common.error"));
      setGoing(false);
    }
  };

  return (
    <section class="card" aria-labelledby="links-connect">
      <h2 id="links-connect">{t("links.connect")}</h2>
      {regions.length === 0 ? (
        <p>{t("links.no_journals")}</p>
      ) : (
        <form onSubmit={start}>
          <p class="muted">{t("links.connect.hint")}</p>
          <label>
            {t("links.region")}
            <select required value={code} onChange={(e) => choose(e.currentTarget.value)}>
              <option value="">{t("links.region.choose")}</option>
              {regions.map((r) => (
                <option key={r.code} value={r.code}>
                  {r.name}
                </option>
              ))}
            </select>
          </label>
          {done ? (
            <p>{t("links.region.done")}</p>
          ) : (
            region && (
              <fieldset>
              <legend>{t("links.journal")}</legend>
                {region.journals.map((j) => (
                  <label key={j.id}>
                    <input
                      type="radio"
                      name="journal"
                      required
                      value={j.id}
                      checked={journalId === j.id}
                      disabled={linked.has(j.id)}
                      onChange={() => setJournalId(j.id)}
                    />{" "}
                    {linked.has(j.id) ? t("links.journal.linked", { journal: j.name }) : j.name}
                  </label>
                ))}
              </fieldset>
            )
          )}
          {!done && (
            <button type="submit" disabled={going}>
              {going ? t("links.going") : t("links.continue")}
            </button>
          )}
          {error && (
            <p class="error" role="alert">
              {error}
            </p>
          )}
        </form>
      )}
    </section>
  );
}
