// What a message carries: photos (thumbnails that open full size), sound and film players,
// voice messages with the waveform the server measured, and documents to download.
import { useEffect, useRef, useState } from "preact/hooks";
import { phrases, t } from "../../lib/i18n";
import type { Attachment } from "../../lib/protocol";
import { duration, fileSize } from "./format";
import { Icon } from "./Icon";

phrases({
  "att.photo": { ru: "Фото {name}: открыть", en: "Photo {name}: open" },
  "att.photo_full": { ru: "Фото {name}", en: "Photo {name}" },
  "att.download": { ru: "Скачать", en: "Download" },
  "att.voice": { ru: "Голосовое сообщение, {time}", en: "Voice message, {time}" },
  "att.play": { ru: "Слушать", en: "Play" },
  "att.pause": { ru: "Пауза", en: "Pause" },
  "att.seek": { ru: "Перемотка", en: "Seek" },
  "att.video": { ru: "Видео {name}", en: "Video {name}" },
});

export const fileUrl = (id: number) => `/api/v1/files/${id}`;

export function Attachments({
  items,
  onPhoto,
}: {
  items: Attachment[];
  onPhoto: (photo: Attachment) => void;
}) {
  return (
    <div class="attachments">
      {items.map((a) => (
        <AttachmentView key={a.id} a={a} onPhoto={onPhoto} />
      ))}
    </div>
  );
}

function AttachmentView({ a, onPhoto }: { a: Attachment; onPhoto: (photo: Attachment) => void }) {
  const url = fileUrl(a.id);
  switch (a.kind) {
    case "photo":
      return (
        <button type="button" class="photo" onClick={() => onPhoto(a)} aria-label={t("att.photo", { name: a.name })}>
          <img
            src={a.thumbnail ? `${url}/thumbnail` : url}
            alt=""
            width={a.width}
            height={a.height}
            style={a.width && a.height ? { aspectRatio: `${a.width} / ${a.height}` } : undefined}
            loading="lazy"
          />
        </button>
      );
    case "voice":
      return <Voice a={a} />;
    case "video":
      return (
        <video
          class="video"
          controls
          preload="metadata"
          src={url}
          poster={a.thumbnail ? `${url}/thumbnail` : undefined}
          aria-label={t("att.video", { name: a.name })}
          style={a.width && a.height ? { aspectRatio: `${a.width} / ${a.height}` } : undefined}
        />
      );
    case "audio":
      return (
        <figure class="audio">
          <figcaption>{a.name}</figcaption>
          <audio controls preload="metadata" src={url} aria-label={a.name} />
        </figure>
      );
    default:
      return (
        <a class="document" href={url} download={a.name}>
          <Icon name="file" />
          <span class="document-name">{a.name}</span>
          <span class="muted">
            {fileSize(a.size)} · {t("att.download")}
          </span>
        </a>
      );
  }
}

/** A voice message: play and pause, the waveform filling as it plays, and a slider over it
 * for the keyboard and for seeking. */
function Voice({ a }: { a: Attachment }) {
  const audio = useRef<HTMLAudioElement>(null);
  const [playing, setPlaying] = useState(false);
  const [position, setPosition] = useState(0);
  const [total, setTotal] = useState(a.duration_ms ?? 0);
  const bars = a.waveform?.length ? a.waveform : new Array<number>(32).fill(40);
  const played = total ? position / total : 0;
  const toggle = () => {
    const el = audio.current;
    if (!el) return;
    if (el.paused) el.play().catch(() => setPlaying(false));
    else el.pause();
  };
  useEffect(() => () => audio.current?.pause(), []);
  return (
    <div class="voice" role="group" aria-label={t("att.voice", { time: duration(total) })}>
      <button
        type="button"
        class="round"
        aria-label={t(playing ? "att.pause" : "att.play")}
        aria-pressed={playing}
        onClick={toggle}
      >
        <Icon name={playing ? "pause" : "play"} />
      </button>
      <div class="wave">
        <div class="bars" aria-hidden="true">
          {bars.map((level, i) => (
            <i key={i} class={i / bars.length < played ? "on" : ""} style={{ height: `${Math.max(10, (level / 255) * 100)}%` }} />
          ))}
        </div>
        <input
          type="range"
          min={0}
          max={Math.max(total, 1)}
          step={100}
          value={position}
          aria-label={t("att.seek")}
          aria-valuetext={`${duration(position)} / ${duration(total)}`}
          onInput={(e) => {
            const ms = Number(e.currentTarget.value);
            if (audio.current) audio.current.currentTime = ms / 1000;
            setPosition(ms);
          }}
        />
      </div>
      <span class="muted voice-time">{duration(playing || position ? position : total)}</span>
      <audio
        ref={audio}
        src={fileUrl(a.id)}
        preload="none"
        onPlay={() => setPlaying(true)}
        onPause={() => setPlaying(false)}
        onEnded={() => setPosition(0)}
        onTimeUpdate={(e) => setPosition(e.currentTarget.currentTime * 1000)}
        onLoadedMetadata={(e) => {
          const seconds = e.currentTarget.duration;
          if (!total && Number.isFinite(seconds)) setTotal(seconds * 1000);
        }}
      />
    </div>
  );
}

/** A photo full size, in a modal dialog (Escape closes it, focus returns). */
export function PhotoViewer({ photo, onClose }: { photo: Attachment; onClose: () => void }) {
  const dialog = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    dialog.current?.showModal();
  }, []);
  return (
    <dialog
      ref={dialog}
      class="photo-viewer"
      aria-label={t("att.photo_full", { name: photo.name })}
      onClose={onClose}
      onClick={(e) => e.target === dialog.current && dialog.current?.close()}
    >
      <img src={fileUrl(photo.id)} alt={photo.name} />
      <div class="photo-viewer-bar">
        <a href={fileUrl(photo.id)} download={photo.name}>
          {t("att.download")}
        </a>
        <button type="button" onClick={() => dialog.current?.close()}>
          {t("common.close")}
        </button>
      </div>
    </dialog>
  );
}
