// Sign in with a phone and a one-time code, then create the educational profile.
import { useState } from "preact/hooks";
import { ApiError, api } from "../lib/api";
import { phrases, t } from "../lib/i18n";
import { boot, session } from "../lib/state";

phrases({
  "signin.title": { ru: "Вход в Parta", en: "Sign in to Parta" },
  "signin.phone": { ru: "Номер телефона", en: "Phone number" },
  "signin.send": { ru: "Получить код", en: "Get a code" },
  "signin.code": { ru: "Код из SMS", en: "Code from the SMS" },
  "signin.sent": { ru: "Мы отправили код на {phone}.", en: "We sent a code to {phone}." },
  "signin.verify": { ru: "Войти", en: "Sign in" },
  "signin.again": { ru: "Другой номер", en: "Another number" },
  "signin.rules": {
    ru: "У каждого свой телефон и свой учебный профиль. Не регистрируйте профиль ребёнка на номер родителя: родитель и ребёнок входят каждый со своего номера.",
    en: "Everyone has their own phone and their own educational profile. Do not register a child's profile on a parent's number: parent and child each sign in with their own.",
  },
  "profile.title": { ru: "Учебный профиль", en: "Educational profile" },
  "profile.hint": {
    ru: "Укажите настоящие данные: по ним вас узнают учителя, одноклассники и журнал.",
    en: "Give your real details: teachers, classmates and the journal know you by them.",
  },
  "profile.last_name": { ru: "Фамилия", en: "Last name" },
  "profile.first_name": { ru: "Имя", en: "First name" },
  "profile.middle_name": { ru: "Отчество (если есть)", en: "Patronymic (if any)" },
  "profile.birth_date": { ru: "Дата рождения", en: "Date of birth" },
  "profile.sex": { ru: "Пол", en: "Sex" },
  "profile.female": { ru: "женский", en: "female" },
  "profile.male": { ru: "мужской", en: "male" },
  "profile.create": { ru: "Создать профиль", en: "Create the profile" },
  // What the sign-in API refuses with, by its code (the server's own words are English).
  "signin.err.invalid_phone": { ru: "Это не номер телефона: проверьте цифры", en: "That is not a phone number: check the digits" },
  "signin.err.code_invalid": { ru: "Неверный код", en: "Wrong code" },
  "signin.err.code_expired": { ru: "Код больше не действует: запросите новый", en: "The code has expired: ask for a new one" },
  "signin.err.too_many_attempts": {
    ru: "Слишком много неверных кодов: запросите новый",
    en: "Too many wrong codes: ask for a new one",
  },
  "signin.err.resend_too_soon": { ru: "Код уже отправлен, новый можно запросить позже", en: "A code was just sent; a new one can be asked later" },
  "signin.err.rate_limited": { ru: "Слишком много попыток", en: "Too many attempts" },
  "signin.err.unavailable": { ru: "Не удалось отправить SMS", en: "The SMS could not be sent" },
  "signin.retry": { ru: "{text}. Попробуйте через {wait}.", en: "{text}. Try again in {wait}." },
  "signin.seconds": { ru: "{n} с", en: "{n} s" },
  "signin.minutes": { ru: "{n} мин", en: "{n} min" },
});

/** A wait from `Retry-After`: seconds up to a minute and a half, then whole minutes. */
function wait(seconds: number): string {
  return seconds < 90 ? t("signin.seconds", { n: seconds }) : t("signin.minutes", { n: Math.ceil(seconds / 60) });
}

function message(error: unknown): string {
  if (!(error instanceof ApiError)) return t("common.error");
  if (error.errors.length) {
    return error.errors.map((e) => `${t(`profile.${e.field}`)}: ${e.message}`).join("; ");
  }
  const key = `signin.err.${error.code}`;
  const text = t(key) === key ? error.message || error.code : t(key);
  return error.retryAfter ? t("signin.retry", { text, wait: wait(error.retryAfter) }) : text;
}

export function SignIn({ onDone }: { onDone?: () => void }) {
  const [phone, setPhone] = useState("");
  const [sentTo, setSentTo] = useState<string | null>(null);
  const [code, setCode] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);

  const run = (work: () => Promise<void>) => async (e: Event) => {
    e.preventDefault();
    setError("");
    setBusy(true);
    try {
      await work();
    } catch (failure) {
      setError(message(failure));
    } finally {
      setBusy(false);
    }
  };
  const send = run(async () => {
    const sent = await api<{ phone: string }>("POST", "/api/v1/auth/code", { phone });
    setSentTo(sent.phone);
  });
  const verify = run(async () => {
    await api("POST", "/api/v1/auth/verify", { phone: sentTo, code });
    await boot();
    onDone?.();
  });

  return (
    <section class="card narrow" aria-labelledby="signin-title">
      <h1 id="signin-title">{t("signin.title")}</h1>
      <p class="muted">{t("signin.rules")}</p>
      {/* Keys: reusing the code's input for the phone would keep its pattern attribute,
          and the browser would refuse the number ("Другой номер", then "Получить код"). */}
      {sentTo === null ? (
        <form key="phone" onSubmit={send}>
          <label>
            {t("signin.phone")}
            <input
              type="tel"
              name="phone"
              autoComplete="tel"
              inputMode="tel"
              placeholder="+7 900 000-00-00"
              required
              value={phone}
              onInput={(e) => setPhone(e.currentTarget.value)}
            />
          </label>
          <button type="submit" disabled={busy}>
            {t("signin.send")}
          </button>
        </form>
      ) : (
        <form key="code" onSubmit={verify}>
          <p>{t("signin.sent", { phone: sentTo })}</p>
          <label>
            {t("signin.code")}
            <input
              name="code"
              inputMode="numeric"
              autoComplete="one-time-code"
              pattern="[0-9]{6}"
              maxLength={6}
              required
              value={code}
              onInput={(e) => setCode(e.currentTarget.value)}
            />
          </label>
          <button type="submit" disabled={busy}>
            {t("signin.verify")}
          </button>
          <button type="button" class="link" onClick={() => setSentTo(null)}>
            {t("signin.again")}
          </button>
        </form>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </section>
  );
}

export function CreateProfile({ onDone }: { onDone?: () => void }) {
  const [fields, setFields] = useState({
    last_name: "",
    first_name: "",
    middle_name: "",
    birth_date: "",
    sex: "female",
  });
  const [error, setError] = useState("");
  const field = (name: keyof typeof fields, type = "text") => (
    <label>
      {t(`profile.${name}`)}
      <input
        name={name}
        type={type}
        required={name !== "middle_name"}
        value={fields[name]}
        onInput={(e) => setFields({ ...fields, [name]: e.currentTarget.value })}
      />
    </label>
  );
  const submit = async (e: Event) => {
    e.preventDefault();
    setError("");
    try {
      await api("POST", "/api/v1/profile", { ...fields, middle_name: fields.middle_name || null });
      await boot();
      onDone?.();
    } catch (failure) {
      setError(message(failure));
    }
  };
  return (
    <section class="card narrow" aria-labelledby="profile-title">
      <h1 id="profile-title">{t("profile.title")}</h1>
      <p class="muted">{t("profile.hint")}</p>
      <p class="muted">{t("signin.rules")}</p>
      <form onSubmit={submit}>
        {field("last_name")}
        {field("first_name")}
        {field("middle_name")}
        {field("birth_date", "date")}
        <fieldset>
          <legend>{t("profile.sex")}</legend>
          {(["female", "male"] as const).map((sex) => (
            <label class="inline" key={sex}>
              <input
                type="radio"
                name="sex"
                value={sex}
                checked={fields.sex === sex}
                onChange={() => setFields({ ...fields, sex })}
              />
              {t(`profile.${sex}`)}
            </label>
          ))}
        </fieldset>
        <button type="submit">{t("profile.create")}</button>
      </form>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </section>
  );
}

export const signedIn = () => session.value?.profile != null;
