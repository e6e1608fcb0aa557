-- Full-text search of messages with PostgreSQL's Russian configuration (stemming included).
CREATE INDEX chat_events_search ON chat_events
    USING GIN (to_tsvector('russian', coalesce(text, '')))
    WHERE kind = 'message' AND NOT deleted;
