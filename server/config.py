"""Settings: defaults, overridden by ``PARTA_*`` environment variables, then by CLI flags."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class Limits:
    """Sign-in limits and connection bounds; operators tune them with ``PARTA_<NAME>``."""

    code_ttl_s: int = 300
    code_attempts: int = 5
    code_resend_after_s: int = 60
    codes_per_phone_per_hour: int = 5
    # Per client address: a school behind one NAT shares an address, so these are generous.
    codes_per_ip_per_hour: int = 200
    verifies_per_ip_per_minute: int = 120
    session_idle_days: int = 90
    # How long after posting a message its author may still edit it.
    edit_window_s: int = 48 * 3600
    http_body_bytes: int = 1 << 20
    # A journal's whole-school roster or timetable is larger than anything else.
    journal_body_bytes: int = 32 << 20
    http_header_bytes: int = 16 << 10
    ws_message_bytes: int = 1 << 20
    ws_auth_timeout_s: float = 5.0
    ws_ping_interval_s: float = 20.0
    # A connection whose unsent bytes stay above the high-water mark this long is cut.
    ws_slow_reader_s: float = 30.0
    ws_send_high_water: int = 256 << 10
    ws_send_hard_cap: int = 4 << 20
    ws_inbox_requests: int = 32
    # Coroutines serving WebSocket requests: bounds concurrent work, e.g. after a restart.
    ws_request_workers: int = 64
    shutdown_timeout_s: float = 10.0
    # Attachments: the largest file of each kind, and the largest image (pixels) we decode.
    photo_bytes: int = 20 << 20
    document_bytes: int = 50 << 20
    audio_bytes: int = 50 << 20
    video_bytes: int = 500 << 20
    voice_bytes: int = 10 << 20
    image_pixels: int = 50_000_000
    # Lessons: how early a host may open one, and when a live one ends by itself (empty this
    # long, or this long after its end time).
    call_early_start_s: int = 15 * 60
    call_empty_end_s: int = 10 * 60
    call_overrun_s: int = 60 * 60


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path = Path("parta-data")
    db: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str | None = None
    sms_webhook_url: str | None = None
    # Reverse proxies (addresses or networks) whose X-Forwarded-For names the client.
    trusted_proxies: tuple[str, ...] = ()
    log_json: bool = False
    # SFU workers (processes); 0 turns calls off. Worker i listens on media_port + i
    # (UDP and ICE-TCP), or on a free port when media_port is 0.
    sfu_workers: int = 1
    media_host: str = "127.0.0.1"
    media_announce: str | None = None
    media_port: int = 0
    limits: Limits = field(default_factory=Limits)

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def public_origin(self) -> str:
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def secure_cookies(self) -> bool:
        return self.base_url.startswith("https://")


def limits_from_env(environ: dict[str, str] | None = None) -> Limits:
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for f in dataclasses.fields(Limits):
        raw = env.get(f"PARTA_{f.name.upper()}")
        if raw is not None:
            values[f.name] = float(raw) if f.type == "float" else int(raw)
    return Limits(**values)  # type: ignore[arg-type]
