-- Journals are trusted integrators; every id they send is scoped to them.
CREATE TABLE journals (
    id TEXT PRIMARY KEY,
    region_code TEXT NOT NULL,
    region_name TEXT NOT NULL,
    name TEXT NOT NULL,
    link_url TEXT NOT NULL,
    webhook_url TEXT,
    token_hash TEXT NOT NULL UNIQUE,
    signing_secret TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE schools (
    id {{id}},
    journal_id TEXT NOT NULL REFERENCES journals (id),
    ext_id TEXT NOT NULL,
    name TEXT NOT NULL,
    timezone TEXT NOT NULL,
    UNIQUE (journal_id, ext_id)
);

-- People as the journal knows them (OneRoster users); linked to accounts later.
CREATE TABLE persons (
    id {{id}},
    journal_id TEXT NOT NULL REFERENCES journals (id),
    ext_id TEXT NOT NULL,
    last_name TEXT NOT NULL,
    first_name TEXT NOT NULL,
    middle_name TEXT,
    UNIQUE (journal_id, ext_id)
);

CREATE TABLE school_persons (
    school_id BIGINT NOT NULL REFERENCES schools (id),
    person_id BIGINT NOT NULL REFERENCES persons (id),
    role TEXT NOT NULL,
    PRIMARY KEY (school_id, person_id)
);

CREATE INDEX school_persons_person ON school_persons (person_id);

CREATE TABLE subjects (
    id {{id}},
    school_id BIGINT NOT NULL REFERENCES schools (id),
    ext_id TEXT NOT NULL,
    name TEXT NOT NULL,
    UNIQUE (school_id, ext_id)
);

CREATE TABLE classes (
    id {{id}},
    school_id BIGINT NOT NULL REFERENCES schools (id),
    ext_id TEXT NOT NULL,
    name TEXT NOT NULL,
    grade INTEGER NOT NULL,
    teacher_id BIGINT REFERENCES persons (id),
    UNIQUE (school_id, ext_id)
);

CREATE TABLE class_students (
    class_id BIGINT NOT NULL REFERENCES classes (id),
    person_id BIGINT NOT NULL REFERENCES persons (id),
    PRIMARY KEY (class_id, person_id)
);

CREATE TABLE groups (
    id {{id}},
    school_id BIGINT NOT NULL REFERENCES schools (id),
    ext_id TEXT NOT NULL,
    class_id BIGINT REFERENCES classes (id),
    subject_id BIGINT REFERENCES subjects (id),
    name TEXT NOT NULL,
    UNIQUE (school_id, ext_id)
);

CREATE TABLE group_members (
    group_id BIGINT NOT NULL REFERENCES groups (id),
    person_id BIGINT NOT NULL REFERENCES persons (id),
    role TEXT NOT NULL,
    PRIMARY KEY (group_id, person_id)
);

CREATE TABLE parent_links (
    school_id BIGINT NOT NULL REFERENCES schools (id),
    parent_id BIGINT NOT NULL REFERENCES persons (id),
    student_id BIGINT NOT NULL REFERENCES persons (id),
    PRIMARY KEY (school_id, parent_id, student_id)
);

CREATE TABLE timetable (
    id {{id}},
    school_id BIGINT NOT NULL REFERENCES schools (id),
    ext_id TEXT NOT NULL,
    group_id BIGINT NOT NULL REFERENCES groups (id),
    teacher_id BIGINT NOT NULL REFERENCES persons (id),
    starts_at BIGINT NOT NULL,
    ends_at BIGINT NOT NULL,
    UNIQUE (school_id, ext_id)
);

CREATE INDEX timetable_group ON timetable (group_id, starts_at);

-- One journal account per person, one person per account in a journal.
CREATE TABLE account_links (
    person_id BIGINT PRIMARY KEY REFERENCES persons (id),
    journal_id TEXT NOT NULL REFERENCES journals (id),
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    linked_at BIGINT NOT NULL,
    UNIQUE (journal_id, account_id)
);

CREATE INDEX account_links_account ON account_links (account_id);

CREATE TABLE pending_links (
    id TEXT PRIMARY KEY,
    journal_id TEXT NOT NULL REFERENCES journals (id),
    ext_user_id TEXT NOT NULL,
    jti TEXT NOT NULL,
    return_url TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE used_assertions (
    journal_id TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (journal_id, jti)
);

-- Chats the journal's data makes or the journal creates: which, from what, for whom.
ALTER TABLE chats ADD COLUMN journal_id TEXT;
ALTER TABLE chats ADD COLUMN school_id BIGINT;
-- "class:<id>:students", "class:<id>:parents", "school:<id>:colleagues", "group:<id>".
ALTER TABLE chats ADD COLUMN source TEXT;
ALTER TABLE chats ADD COLUMN ext_scope TEXT;
ALTER TABLE chats ADD COLUMN creator_person_id BIGINT;
ALTER TABLE chats ADD COLUMN in_journal BOOLEAN NOT NULL DEFAULT FALSE;

CREATE UNIQUE INDEX chats_source ON chats (source) WHERE source IS NOT NULL;

-- Who should be in a chat by the journal's word (a person, linked or not yet).
CREATE TABLE chat_roster (
    chat_id BIGINT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    person_id BIGINT NOT NULL REFERENCES persons (id),
    role TEXT NOT NULL,
    PRIMARY KEY (chat_id, person_id)
);

CREATE INDEX chat_roster_person ON chat_roster (person_id);

-- "roster": the member is there because the journal says so (and leaves when it stops).
ALTER TABLE chat_members ADD COLUMN source TEXT NOT NULL DEFAULT 'manual';
