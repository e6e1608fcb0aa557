// Breakout rooms for the host: make them (names, who goes where by dragging or choosing,
// the rest at random, a timer), then watch them run: visit, move people, write to every
// room, close them.
import type { ComponentChildren } from "preact";
import { useState } from "preact/hooks";
import { t } from "../lib/i18n";
import { Countdown } from "./Controls";
import type { CallSession } from "./session";
import { type CallPerson, MAX_ROOMS } from "./types";
import { confirmThen } from "./ui";

interface Room {
  index: number;
  name: string;
}

/** A room as a drop target; each person in it can be dragged or sent elsewhere by a list. */
function RoomBox({
  room,
  rooms,
  people,
  move,
  children,
}: {
  room: Room;
  rooms: Room[];
  people: CallPerson[];
  move: (accountId: number, room: number) => void;
  children?: ComponentChildren;
}) {
  const [over, setOver] = useState(false);
  return (
    <section
      class={`room-box${over ? " drop" : ""}`}
      data-room={room.index}
      onDragOver={(e) => {
        e.preventDefault();
        setOver(true);
      }}
      onDragLeave={() => setOver(false)}
      onDrop={(e) => {
        e.preventDefault();
        setOver(false);
        const id = Number(e.dataTransfer?.getData("text/plain"));
        if (id) move(id, room.index);
      }}
    >
      {children}
      <ul class="chips">
        {people.map((person) => (
          <li
            key={person.account_id}
            class="chip"
            draggable
            onDragStart={(e) => e.dataTransfer?.setData("text/plain", String(person.account_id))}
          >
            <span>{person.name}</span>
            <select
              aria-label={t("call.rooms.for", { name: person.name })}
              value={room.index}
              onChange={(e) => move(person.account_id, Number(e.currentTarget.value))}
            >
              {rooms.map((r) => (
                <option key={r.index} value={r.index}>
                  {r.name}
                </option>
              ))}
            </select>
          </li>
        ))}
      </ul>
    </section>
  );
}

function Setup({ session }: { session: CallSession }) {
  const [count, setCount] = useState(2);
  const [names, setNames] = useState<string[]>([]);
  const [plan, setPlan] = useState<Record<number, number>>({});
  const [random, setRandom] = useState(true);
  const [minutes, setMinutes] = useState("");
  const me = session.myId();
  const people = (session.people.value?.people ?? []).filter((p) => p.account_id !== me);
  const nameOf = (index: number) =>
    names[index - 1]?.trim() || t("call.rooms.default", { n: index });
  const rooms: Room[] = [{ index: 0, name: t("call.rooms.unassigned") }];
  for (let index = 1; index <= count; index++) rooms.push({ index, name: nameOf(index) });
  const roomOf = (p: CallPerson) => {
    const room = plan[p.account_id] ?? 0;
    return room <= count ? room : 0;
  };
  const move = (accountId: number, room: number) => setPlan({ ...plan, [accountId]: room });

  const submit = async (e: Event) => {
    e.preventDefault();
    const assign = people.filter((p) => roomOf(p) > 0).map((p) => [p.account_id, roomOf(p)]);
    const timer = Number.parseInt(minutes, 10);
    await session.act("call.rooms.open", {
      names: rooms.slice(1).map((room) => room.name),
      assign,
      random,
      minutes: timer > 0 ? Math.min(timer, 240) : undefined,
    });
  };

  return (
    <form class="rooms-setup" onSubmit={submit}>
      <label>
        {t("call.rooms.count")}
        <input
          type="number"
          min={1}
          max={MAX_ROOMS}
          value={count}
          onInput={(e) =>
            setCount(Math.max(1, Math.min(MAX_ROOMS, Number(e.currentTarget.value) || 1)))
          }
        />
      </label>
      {rooms.map((room) => (
        <RoomBox
          key={room.index}
          room={room}
          rooms={rooms}
          people={people.filter((p) => roomOf(p) === room.index)}
          move={move}
        >
          {room.index === 0 ? (
            <h3>{room.name}</h3>
          ) : (
            <input
              aria-label={t("call.rooms.name", { n: room.index })}
              placeholder={t("call.rooms.default", { n: room.index })}
              value={names[room.index - 1] ?? ""}
              maxLength={100}
              onInput={(e) => {
                const next = [...names];
                next[room.index - 1] = e.currentTarget.value;
                setNames(next);
              }}
            />
          )}
        </RoomBox>
      ))}
      <p class="muted">{t("call.rooms.drag")}</p>
      <label class="inline">
        <input
          type="checkbox"
          checked={random}
          onChange={(e) => setRandom(e.currentTarget.checked)}
        />
        {t("call.rooms.random")}
      </label>
      <label>
        {t("call.rooms.minutes")}
        <input
          type="number"
          min={1}
          max={240}
          inputMode="numeric"
          value={minutes}
          onInput={(e) => setMinutes(e.currentTarget.value)}
        />
      </label>
      <button type="submit">{t("call.rooms.start")}</button>
    </form>
  );
}

function Running({ session }: { session: CallSession }) {
  const [text, setText] = useState("");
  const state = session.people.value!;
  const rooms: Room[] = [{ index: 0, name: t("call.rooms.main") }, ...(state.rooms ?? [])];
  const mine = session.room.value;
  const move = (accountId: number, room: number) =>
    void session.act("call.rooms.move", { account_id: accountId, room });
  const broadcast = async (e: Event) => {
    e.preventDefault();
    const message = text.trim();
    if (message && (await session.act("call.rooms.broadcast", { text: message }))) setText("");
  };
  return (
    <div class="rooms-running">
      {state.rooms_close_at && (
        <p>
          {t("call.rooms.closing")} <Countdown until={state.rooms_close_at} />
        </p>
      )}
      {rooms.map((room) => (
        <RoomBox
          key={room.index}
          room={room}
          rooms={rooms}
          people={state.people.filter((p) => (p.room ?? 0) === room.index)}
          move={move}
        >
          <h3>
            {room.name}
            {room.index !== mine && (
              <button
                type="button"
                class="secondary small"
                onClick={() => move(session.myId(), room.index)}
              >
                {t(room.index ? "call.rooms.visit" : "call.rooms.back")}
              </button>
            )}
          </h3>
        </RoomBox>
      ))}
      <form onSubmit={broadcast}>
        <label>
          {t("call.rooms.broadcast")}
          <textarea
            rows={2}
            maxLength={10_000}
            value={text}
            onInput={(e) => setText(e.currentTarget.value)}
          />
        </label>
        <button type="submit" disabled={!text.trim()}>
          {t("call.rooms.send")}
        </button>
      </form>
      <button
        type="button"
        class="danger"
        onClick={() =>
          confirmThen(t("call.rooms.close.confirm"), t("call.rooms.close"), () =>
            void session.act("call.rooms.close"),
          )
        }
      >
        {t("call.rooms.close")}
      </button>
    </div>
  );
}

export function RoomsPanel({ session }: { session: CallSession }) {
  return (session.people.value?.rooms?.length ?? 0) > 0 ? (
    <Running session={session} />
  ) : (
    <Setup session={session} />
  );
}
