// Russian first, English switchable. Keys are English phrases' ids; values per language.
import { signal } from "@preact/signals";

export type Lang = "ru" | "en";

const stored = (typeof localStorage !== "undefined" && localStorage.getItem("parta.lang")) as Lang | null;
export const lang = signal<Lang>(stored === "en" ? "en" : "ru");

export function setLang(value: Lang): void {
  lang.value = value;
  localStorage.setItem("parta.lang", value);
  document.documentElement.lang = value;
}

type Dictionary = Record<string, { ru: string; en: string }>;
const words: Dictionary = {};

/** Register phrases (each screen adds its own). */
export function phrases(entries: Dictionary): void {
  Object.assign(words, entries);
}

/** The phrase in the current language, with {name} placeholders filled. */
export function t(key: string, params: Record<string, string | number> = {}): string {
  const entry = words[key];
  let text = entry ? entry[lang.value] : key;
  for (const [name, value] of Object.entries(params)) text = text.replaceAll(`{${name}}`, String(value));
  return text;
}

/** ``key`` worded for someone of ``sex`` ("закрепила", "закрепил"): the phrase
 * ``key.female`` or ``key.male`` where there is one, else ``key`` itself ("закрепил(а)"). */
export function tSex(
  key: string,
  sex: "male" | "female" | null | undefined,
  params: Record<string, string | number> = {},
): string {
  const gendered = `${key}.${sex}`;
  return t(sex && words[gendered] ? gendered : key, params);
}

/** Russian plural forms: 1 сообщение, 2 сообщения, 5 сообщений. */
export function plural(n: number, one: string, few: string, many: string): string {
  const tens = n % 100;
  const units = n % 10;
  if (tens >= 11 && tens <= 14) return many;
  if (units === 1) return one;
  if (units >= 2 && units <= 4) return few;
  return many;
}

phrases({
  app: { ru: "Parta", en: "Parta" },
  "lang.switch": { ru: "English", en: "Русский" },
  "common.cancel": { ru: "Отмена", en: "Cancel" },
  "common.save": { ru: "Сохранить", en: "Save" },
  "common.back": { ru: "Назад", en: "Back" },
  "common.close": { ru: "Закрыть", en: "Close" },
  "common.error": { ru: "Что-то пошло не так", en: "Something went wrong" },
  "conn.connecting": { ru: "Подключение…", en: "Connecting…" },
  "conn.closed": { ru: "Нет связи, переподключаемся…", en: "Offline, reconnecting…" },
});
