-- Accounts are phone numbers that signed in; the educational profile is the real person.
CREATE TABLE accounts (
    id {{id}},
    phone TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE profiles (
    account_id BIGINT PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    last_name TEXT NOT NULL,
    first_name TEXT NOT NULL,
    middle_name TEXT,
    birth_date TEXT NOT NULL,
    sex TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE sign_in_codes (
    phone TEXT PRIMARY KEY,
    code_hash TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    attempts INTEGER NOT NULL,
    sent_at BIGINT NOT NULL,
    -- How many codes went to this phone since window_started_at (the hourly cap).
    window_started_at BIGINT NOT NULL,
    sent_in_window INTEGER NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);

CREATE INDEX sessions_account ON sessions (account_id);

CREATE TABLE chats (
    id {{id}},
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    created_by BIGINT REFERENCES accounts (id),
    created_at BIGINT NOT NULL,
    last_seq BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE chat_members (
    chat_id BIGINT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    joined_at BIGINT NOT NULL,
    read_seq BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (chat_id, account_id)
);

CREATE INDEX chat_members_account ON chat_members (account_id);

-- The chat's log: every change is an event with the chat's next sequence number.
CREATE TABLE chat_events (
    chat_id BIGINT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    actor_id BIGINT NOT NULL,
    at BIGINT NOT NULL,
    client_id TEXT,
    text TEXT,
    member_id BIGINT,
    role TEXT,
    title TEXT,
    PRIMARY KEY (chat_id, seq)
);

-- A retried post with the same client message id finds the first one.
CREATE UNIQUE INDEX chat_events_client_id ON chat_events (actor_id, client_id)
    WHERE client_id IS NOT NULL;
