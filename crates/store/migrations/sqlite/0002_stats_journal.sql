-- tokenlb store, SQLite, migration 2: the stats journal.
-- Each stats flush appends one row whose body holds the whole batch (counter snapshots and
-- minute deltas of every token touched; encoding in crates/store/src/sqlite/journal.rs);
-- the store folds rows into tokens / token_minutes now and then, in token-id order, and
-- deletes them. A row with `dropped` set (and an empty body) marks a deleted token: what the
-- journal holds for it before that row is not folded. AUTOINCREMENT keeps seq increasing even
-- after every row was folded away (fold progress and drop markers compare seqs).

CREATE TABLE stats_journal (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    body    BLOB NOT NULL,
    dropped TEXT
);
CREATE INDEX stats_journal_dropped ON stats_journal (dropped) WHERE dropped IS NOT NULL;
