// Making a chat: a name, and optionally people one already shares a chat with.
import { useState } from "preact/hooks";
import { errorText } from "../components/messenger/format";
import { Link } from "../components/messenger/Link";
import { PeoplePicker } from "../components/messenger/People";
import { phrases, t } from "../lib/i18n";
import type { ChatInfo } from "../lib/protocol";
import { navigate } from "../lib/router";
import { addChat, connection } from "../lib/state";

phrases({
  "new.title": { ru: "Новый чат", en: "New chat" },
  "new.name": { ru: "Название", en: "Name" },
  "new.hint": {
    ru: "Добавить можно тех, с кем у вас уже есть общий чат. Других людей позовите ссылкой-приглашением из настроек чата.",
    en: "You can add people you already share a chat with. Invite others with a link from the chat's settings.",
  },
  "new.create": { ru: "Создать чат", en: "Create the chat" },
});

export function NewChat() {
  const [title, setTitle] = useState("");
  const [chosen, setChosen] = useState(new Set<number>());
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setError("");
    setBusy(true);
    try {
      const { chat } = await connection.request<{ chat: ChatInfo }>("chat.create", {
        title: title.trim(),
        member_ids: [...chosen],
      });
      addChat(chat);
      navigate(`/chat/${chat.id}`, true);
    } catch (failure) {
      setError(errorText(failure));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section class="card narrow-wide" aria-labelledby="new-title">
      <div class="page-head">
        <Link href="/" class="back" aria-label={t("chat.back")}>
          ←
        </Link>
        <h1 id="new-title">{t("new.title")}</h1>
      </div>
      <form onSubmit={submit}>
        <label>
          {t("new.name")}
          <input value={title} maxLength={200} required onInput={(e) => setTitle(e.currentTarget.value)} />
        </label>
        <p class="muted">{t("new.hint")}</p>
        <PeoplePicker chosen={chosen} onChange={setChosen} />
        <button type="submit" disabled={busy || !title.trim()}>
          {t("new.create")}
        </button>
      </form>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </section>
  );
}
