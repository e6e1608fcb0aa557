// The web client: the shell, the routes, and who is signed in.
import { render } from "preact";
import { useEffect } from "preact/hooks";
import { lang, phrases, setLang, t } from "./lib/i18n";
import { match, navigate, path } from "./lib/router";
import { boot, online, session, signOut } from "./lib/state";
import { CreateProfile, SignIn } from "./pages/SignIn";
import { routes } from "./routes";

phrases({
  "nav.chats": { ru: "Чаты", en: "Chats" },
  "nav.links": { ru: "Дневник", en: "Journal" },
  "nav.signout": { ru: "Выйти", en: "Sign out" },
  "nav.main": { ru: "Основное меню", en: "Main menu" },
});

function Header() {
  const signed = session.value?.profile;
  return (
    <header class="top">
      <a
        href="/"
        class="brand"
        onClick={(e) => {
          e.preventDefault();
          navigate("/");
        }}
      >
        Parta
      </a>
      <nav aria-label={t("nav.main")}>
        {signed && (
          <>
            <a href="/" onClick={(e) => (e.preventDefault(), navigate("/"))}>
              {t("nav.chats")}
            </a>
            <a href="/links" onClick={(e) => (e.preventDefault(), navigate("/links"))}>
              {t("nav.links")}
            </a>
          </>
        )}
        <button type="button" class="link" onClick={() => setLang(lang.value === "ru" ? "en" : "ru")}>
          {t("lang.switch")}
        </button>
        {session.value && (
          <button type="button" class="link" onClick={() => signOut().then(() => navigate("/"))}>
            {t("nav.signout")}
          </button>
        )}
      </nav>
      {session.value?.profile && online.value !== "open" && (
        <span class="status" role="status">
          {t(online.value === "closed" ? "conn.closed" : "conn.connecting")}
        </span>
      )}
    </header>
  );
}

function Page() {
  const current = path.value;
  const state = session.value;
  for (const route of routes) {
    const params = match(route.path, current);
    if (!params) continue;
    if (route.public) return route.render(params);
    if (state === undefined) return <p class="muted">…</p>;
    if (state === null) return <SignIn />;
    if (!state.profile) return <CreateProfile />;
    return route.render(params);
  }
  if (state === undefined) return <p class="muted">…</p>;
  if (state === null) return <SignIn />;
  if (!state.profile) return <CreateProfile />;
  return routes[0].render({});
}

function App() {
  useEffect(() => {
    document.documentElement.lang = lang.value;
    boot();
  }, []);
  return (
    <>
      <Header />
      <main id="main">
        <Page />
      </main>
    </>
  );
}

render(<App />, document.getElementById("app")!);
