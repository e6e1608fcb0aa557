-- Lessons: calls that belong to a chat, scheduled from the journal.
CREATE TABLE calls (
    id {{id}},
    chat_id BIGINT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    journal_id TEXT NOT NULL REFERENCES journals (id),
    -- The teacher who scheduled it: the host, once their profile is linked.
    creator_person_id BIGINT NOT NULL REFERENCES persons (id),
    title TEXT NOT NULL,
    starts_at BIGINT NOT NULL,
    ends_at BIGINT NOT NULL,
    -- The timetable slot a subject chat's lesson takes (its times come from there).
    slot_id BIGINT REFERENCES timetable (id) ON DELETE SET NULL,
    state TEXT NOT NULL,
    -- The lesson card's message in the chat, once published.
    card_seq BIGINT,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    ended_at BIGINT,
    end_reason TEXT,
    deleted BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE INDEX calls_chat ON calls (chat_id, starts_at);
CREATE INDEX calls_live ON calls (creator_person_id) WHERE state = 'live';

-- Who was in a lesson and when: one row per stay (a reconnect is a new row; attendance
-- joins overlapping and touching stays into one presence).
CREATE TABLE call_presence (
    call_id BIGINT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    joined_at BIGINT NOT NULL,
    left_at BIGINT
);

CREATE INDEX call_presence_call ON call_presence (call_id, account_id);

-- The whiteboard: operations in the order the server took them.
CREATE TABLE board_ops (
    call_id BIGINT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    op_id TEXT NOT NULL,
    position BIGINT NOT NULL,
    body {{blob}} NOT NULL,
    PRIMARY KEY (call_id, op_id)
);

CREATE INDEX board_ops_order ON board_ops (call_id, position);

-- Single-use tickets behind the journal's join URL.
CREATE TABLE join_tickets (
    token_hash TEXT PRIMARY KEY,
    call_id BIGINT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    expires_at BIGINT NOT NULL,
    used BOOLEAN NOT NULL DEFAULT FALSE
);

-- Webhooks to journals: kept until delivered, retried with backoff for a day.
CREATE TABLE webhook_outbox (
    id {{id}},
    journal_id TEXT NOT NULL REFERENCES journals (id),
    event TEXT NOT NULL,
    body {{blob}} NOT NULL,
    created_at BIGINT NOT NULL,
    next_at BIGINT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    delivered_at BIGINT,
    failed BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE INDEX webhook_outbox_due ON webhook_outbox (next_at) WHERE delivered_at IS NULL AND NOT failed;
