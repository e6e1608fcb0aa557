-- The search index's rows keyed by message: rowid = chat_id * 2^32 + seq. FTS5 reaches a row
-- by rowid alone; replacing or removing a message's row by its unindexed chat_id and seq
-- read the whole index, on every post (about 1 ms per 10,000 messages stored).
CREATE VIRTUAL TABLE message_search_keyed USING fts5(
    stems,
    chat_id UNINDEXED,
    seq UNINDEXED,
    tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO message_search_keyed (rowid, stems, chat_id, seq)
    SELECT chat_id * 4294967296 + seq, stems, chat_id, seq FROM message_search;
DROP TABLE message_search;
ALTER TABLE message_search_keyed RENAME TO message_search;
