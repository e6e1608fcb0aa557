-- Messages: what they answer, what they carry, and what happened to them since.
ALTER TABLE chat_events ADD COLUMN target BIGINT;
ALTER TABLE chat_events ADD COLUMN reply_to BIGINT;
ALTER TABLE chat_events ADD COLUMN edited_at BIGINT;
ALTER TABLE chat_events ADD COLUMN deleted BOOLEAN NOT NULL DEFAULT FALSE;
-- JSON: emoji, mentions, attachment ids, poll, forwarded-from.
ALTER TABLE chat_events ADD COLUMN data TEXT;

CREATE TABLE reactions (
    chat_id BIGINT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    account_id BIGINT NOT NULL,
    emoji TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (chat_id, seq, account_id, emoji)
);

CREATE TABLE pins (
    chat_id BIGINT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    pinned_by BIGINT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (chat_id, seq)
);

CREATE TABLE polls (
    chat_id BIGINT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    options INTEGER NOT NULL,
    multiple BOOLEAN NOT NULL,
    anonymous BOOLEAN NOT NULL,
    closed BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (chat_id, seq)
);

CREATE TABLE poll_votes (
    chat_id BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    account_id BIGINT NOT NULL,
    option INTEGER NOT NULL,
    PRIMARY KEY (chat_id, seq, account_id, option)
);

-- Chat settings and each member's own view of the chat.
ALTER TABLE chats ADD COLUMN closed BOOLEAN NOT NULL DEFAULT FALSE;
-- "<smaller account id>:<larger>" for a direct chat: one per pair.
ALTER TABLE chats ADD COLUMN direct_key TEXT;
CREATE UNIQUE INDEX chats_direct ON chats (direct_key) WHERE direct_key IS NOT NULL;

ALTER TABLE chat_members ADD COLUMN cleared_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE chat_members ADD COLUMN muted BOOLEAN NOT NULL DEFAULT FALSE;
-- Set by a moderator: the member may read but not post until then.
ALTER TABLE chat_members ADD COLUMN silenced_until BIGINT NOT NULL DEFAULT 0;

CREATE TABLE invites (
    token_hash TEXT PRIMARY KEY,
    chat_id BIGINT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    created_by BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked BOOLEAN NOT NULL DEFAULT FALSE,
    uses INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX invites_chat ON invites (chat_id);

CREATE TABLE blocks (
    account_id BIGINT NOT NULL,
    blocked_id BIGINT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (account_id, blocked_id)
);

CREATE TABLE reports (
    id {{id}},
    chat_id BIGINT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    reporter_id BIGINT NOT NULL,
    reason TEXT NOT NULL,
    status TEXT NOT NULL,
    resolution TEXT,
    resolved_by BIGINT,
    created_at BIGINT NOT NULL,
    resolved_at BIGINT
);

CREATE INDEX reports_chat ON reports (chat_id, status);
