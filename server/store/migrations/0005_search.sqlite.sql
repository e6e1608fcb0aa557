-- Full-text search of messages. SQLite's tokenizers know no Russian morphology, so the
-- application stores Snowball stems of each message here (server/store/search.py).
CREATE VIRTUAL TABLE message_search USING fts5(
    stems,
    chat_id UNINDEXED,
    seq UNINDEXED,
    tokenize = 'unicode61 remove_diacritics 2'
);
