-- tokenlb store, SQLite, migration 1: tokens, pools, events, per-minute counts, metadata.
-- Secrets are never stored in plain: secret_enc / refresh_enc hold AES-256-GCM ciphertext and
-- secret_fp a keyed HMAC used only to find a token by its value.

CREATE TABLE pools (
    name        TEXT PRIMARY KEY NOT NULL,
    policy_json TEXT NOT NULL
);

CREATE TABLE tokens (
    id                TEXT PRIMARY KEY NOT NULL,
    pool              TEXT NOT NULL,
    name              TEXT NOT NULL,
    secret_enc        TEXT NOT NULL,
    secret_fp         TEXT NOT NULL UNIQUE,
    refresh_enc       TEXT,
    weight            INTEGER NOT NULL,
    expires_at        INTEGER,
    rpm               INTEGER,
    max_in_flight     INTEGER,
    state             TEXT NOT NULL,
    state_reason      TEXT,
    state_until       INTEGER,
    created_at        INTEGER NOT NULL,
    c_success         INTEGER NOT NULL DEFAULT 0,
    c_auth            INTEGER NOT NULL DEFAULT 0,
    c_rate_limited    INTEGER NOT NULL DEFAULT 0,
    c_quota_exhausted INTEGER NOT NULL DEFAULT 0,
    c_transient       INTEGER NOT NULL DEFAULT 0,
    c_client_error    INTEGER NOT NULL DEFAULT 0,
    c_unknown         INTEGER NOT NULL DEFAULT 0,
    last_used         INTEGER,
    last_error        TEXT,
    last_error_at     INTEGER,
    latency_ewma_ms   REAL,
    times_cooled      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX tokens_pool ON tokens (pool);

CREATE TABLE events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    at           INTEGER NOT NULL,
    token_id     TEXT NOT NULL,
    token_name   TEXT NOT NULL,
    pool         TEXT NOT NULL,
    from_state   TEXT,
    to_state     TEXT,
    kind         TEXT NOT NULL,
    reason       TEXT NOT NULL,
    sample_error TEXT
);
CREATE INDEX events_token ON events (token_id, seq);
CREATE INDEX events_pool ON events (pool, seq);
CREATE INDEX events_at ON events (at);

CREATE TABLE token_minutes (
    token_id TEXT NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    pool     TEXT NOT NULL,
    minute   INTEGER NOT NULL,
    requests INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    PRIMARY KEY (token_id, minute)
) WITHOUT ROWID;
CREATE INDEX token_minutes_minute ON token_minutes (minute, pool);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
