// /link/:pending — a journal sent the person here to link their educational profile. The page
// signs in by itself (phone and code, the profile if new), shows whom the profile is linked
// to, and confirms; then the browser goes back to the journal, or to "Дневник" when the
// linking started in Parta (the landing adds ?from=parta).
import { useEffect, useState } from "preact/hooks";
import { ApiError, api } from "../lib/api";
import { phrases, t } from "../lib/i18n";
import { navigate, query } from "../lib/router";
import { boot, loadChats, session, signOut } from "../lib/state";
import { type PersonName, fullName, locale, rich } from "./Links";
import { CreateProfile, SignIn } from "./SignIn";

phrases({
  "pending.title": { ru: "Привязка учебного профиля", en: "Linking your educational profile" },
  "pending.asks": {
    ru: "Журнал «{journal}» просит привязать ваш учебный профиль Parta к учётной записи:",
    en: "The journal “{journal}” asks to link your Parta educational profile to the account:",
  },
  "pending.until": { ru: "Ссылка действует до {time}.", en: "The link is valid until {time}." },
  "pending.confirm.title": { ru: "Подтвердите привязку", en: "Confirm the link" },
  "pending.confirm.text": {
    ru: "Вы привязываете профиль {profile} к учётной записи {person} в журнале «{journal}».",
    en: "You are linking the profile {profile} to the account {person} in “{journal}”.",
  },
  "pending.confirm.after": {
    ru: "После привязки чаты класса и школы появятся в Parta сами.",
    en: "Once linked, your class's and school's chats appear in Parta by themselves.",
  },
  "pending.names_differ": {
    ru: "Фамилии в профиле и в журнале различаются. Проверьте, что вы вошли со своего номера: у ребёнка и родителя — свои профили.",
    en: "The last names in the profile and in the journal differ. Check that you signed in with your own number: a child and a parent each have their own profile.",
  },
  "pending.confirm": { ru: "Подтвердить привязку", en: "Confirm the link" },
  "pending.other": { ru: "Войти с другим номером", en: "Sign in with another number" },
  "pending.gone.title": { ru: "Ссылка больше не действует", en: "This link no longer works" },
  "pending.gone": {
    ru: "Запрос на привязку устарел или уже выполнен: ссылка действует 10 минут и только один раз. Ничего не изменилось.",
    en: "This link request has expired or was completed already: a link works for 10 minutes and only once. Nothing changed.",
  },
  "pending.gone.journal": {
    ru: "Вернитесь в журнал и нажмите «Привязать учебный профиль» ещё раз.",
    en: "Go back to the journal and press “Link educational profile” again.",
  },
  "pending.gone.parta": { ru: "Начать привязку снова", en: "Start linking again" },
  "pending.mine": { ru: "Мои дневники", en: "My journals" },
  "pending.taken_by_me": {
    ru: "Ваш профиль уже привязан в журнале «{journal}» к учётной записи {person}. Чтобы привязать другую, сначала отвяжите её в разделе «Дневник».",
    en: "Your profile is already linked in “{journal}” to the account {person}. To link another one, unlink it first under “Journal”.",
  },
  "pending.taken": {
    ru: "Эта учётная запись журнала уже привязана к другому профилю Parta, или ссылка уже использована. Ничего не изменилось. Если учётная запись ваша, обратитесь к администратору школы.",
    en: "This journal account is linked to another Parta profile already, or the link was used. Nothing changed. If the account is yours, ask the school's administrator.",
  },
});

interface Pending {
  journal: { id: string; name: string };
  person: PersonName & { schools: { name: string; role: string }[] };
  expires_at: number;
}

export function LinkPending({ pendingId }: { pendingId: string }) {
  // undefined while loading; null once the request is gone (expired, used, unknown)
  const [pending, setPending] = useState<Pending | null | undefined>(undefined);
  const [failed, setFailed] = useState(false);

  useEffect(() => {
    api<Pending>("GET", `/api/v1/links/pending/${encodeURIComponent(pendingId)}`).then(
      setPending,
      (error) => {
        if (error instanceof ApiError && error.code === "not_found") setPending(null);
        else setFailed(true);
      },
    );
  }, [pendingId]);

  if (failed) {
    return (
      <p class="error narrow" role="alert">
        {t("common.error")}
      </p>
    );
  }
  if (pending === undefined) return <p class="muted">…</p>;
  if (pending === null) return <Gone />;

  const state = session.value;
  return (
    <div class="links-flow">
      <section class="card narrow" aria-labelledby="pending-title">
        <h1 id="pending-title">{t("pending.title")}</h1>
        <p>{t("pending.asks", { journal: pending.journal.name })}</p>
        <p class="links-who">
          <strong>{fullName(pending.person)}</strong>
          {pending.person.schools.map((s) => (
            <span class="muted" key={s.name + s.role}>
              {t(`role.${s.role}`)}, {s.name}
            </span>
          ))}
        </p>
        <p class="muted">
          {t("pending.until", {
            time: new Date(pending.expires_at).toLocaleTimeString(locale(), {
              hour: "2-digit",
              minute: "2-digit",
            }),
          })}
        </p>
      </section>
      {state === undefined ? (
        <p class="muted">…</p>
      ) : state === null ? (
        <SignIn />
      ) : !state.profile ? (
        <CreateProfile />
      ) : (
        <Confirm
          pendingId={pendingId}
          pending={pending}
          profile={state.profile}
          onGone={() => setPending(null)}
        />
      )}
    </div>
  );
}

function Confirm(props: {
  pendingId: string;
  pending: Pending;
  profile: PersonName;
  onGone: () => void;
}) {
  const { pending, profile } = props;
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  // After a conflict confirming again cannot help; signing in as someone else might.
  const [refused, setRefused] = useState(false);
  const journal = pending.journal;
  // A child signing in on a parent's phone is the mistake to catch before it is stored.
  const same = (a: string, b: string) =>
    a.trim().toLowerCase().replaceAll("ё", "е") === b.trim().toLowerCase().replaceAll("ё", "е");
  const differ = !same(profile.last_name, pending.person.last_name);

  const confirm = async () => {
    setBusy(true);
    setError("");
    try {
      const done = await api<{ return_url: string }>(
        "POST",
        `/api/v1/links/pending/${encodeURIComponent(props.pendingId)}/confirm`,
      );
      if (query("from") === "parta") {
        loadChats().catch(() => undefined);
        navigate(`/links?linked=${encodeURIComponent(journal.id)}`, true);
      } else {
        // The server checked that the return URL is on the journal's own origin.
        location.replace(done.return_url);
      }
      return;
    } catch (failure) {
      const code = failure instanceof ApiError ? failure.code : "";
      if (code === "not_found") props.onGone();
      else if (code === "unauthenticated" || code === "profile_required") await boot();
      else if (code === "conflict") {
        setRefused(true);
        setError(await conflict(pending));
      }
      else setError(t("common.error"));
    }
    setBusy(false);
  };

  return (
    <section class="card narrow" aria-labelledby="confirm-title">
      <h2 id="confirm-title">{t("pending.confirm.title")}</h2>
      <p>
        {rich("pending.confirm.text", {
          profile: <strong>{fullName(profile)}</strong>,
          person: <strong>{fullName(pending.person)}</strong>,
          journal: journal.name,
        })}
      </p>
      {differ && <p class="links-warning">{t("pending.names_differ")}</p>}
      <p class="muted">{t("pending.confirm.after")}</p>
      <div class="links-actions">
        {!refused && (
          <button type="button" disabled={busy} onClick={confirm}>
            {t("pending.confirm")}
          </button>
        )}
        <button type="button" class="secondary" disabled={busy} onClick={() => signOut()}>
          {t("pending.other")}
        </button>
      </div>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </section>
  );
}

/** Why a confirmation conflicted: "conflict" covers three cases (the assertion was used, the
 * journal account is someone else's, this profile has another account in that journal), and
 * only the last can be told apart from here, by one's own links. */
async function conflict(pending: Pending): Promise<string> {
  const mine = await api<{ links: { journal: { id: string }; person: PersonName }[] }>(
    "GET",
    "/api/v1/links",
  ).catch(() => ({ links: [] }));
  const other = mine.links.find((l) => l.journal.id === pending.journal.id)?.person;
  return other && fullName(other) !== fullName(pending.person)
    ? t("pending.taken_by_me", { journal: pending.journal.name, person: fullName(other) })
    : t("pending.taken");
}

function Gone() {
  const fromParta = query("from") === "parta";
  const go = (e: Event) => {
    e.preventDefault();
    navigate("/links");
  };
  return (
    <section class="card narrow" aria-labelledby="gone-title">
      <h1 id="gone-title">{t("pending.gone.title")}</h1>
      <p>{t("pending.gone")}</p>
      {fromParta ? (
        <p>
          <a href="/links" onClick={go}>
            {t("pending.gone.parta")}
          </a>
        </p>
      ) : (
        <>
          <p>{t("pending.gone.journal")}</p>
          {session.value?.profile && (
            <p>
              <a href="/links" onClick={go}>
                {t("pending.mine")}
              </a>
            </p>
          )}
        </>
      )}
    </section>
  );
}
