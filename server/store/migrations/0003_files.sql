-- Attachments: the bytes live in the blob directory under their SHA-256 (stored once
-- however often they are sent); each upload is a row here, in the chat it was sent to.
CREATE TABLE files (
    id {{id}},
    chat_id BIGINT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    uploader_id BIGINT REFERENCES accounts (id) ON DELETE SET NULL,
    sha256 TEXT NOT NULL,
    size BIGINT NOT NULL,
    mime TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    width INTEGER,
    height INTEGER,
    duration_ms BIGINT,
    -- A voice message's peak levels: a JSON array of 0-255.
    waveform TEXT,
    thumb_sha256 TEXT,
    thumb_mime TEXT,
    created_at BIGINT NOT NULL
);

CREATE INDEX files_chat ON files (chat_id, id);

-- Which rows still need a blob (for removing blobs nobody sends any more).
CREATE INDEX files_sha256 ON files (sha256);
