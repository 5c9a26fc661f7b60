-- tokenlb store, PostgreSQL, migration 1: tokens, pools, events, per-minute counts, metadata.
-- Same columns as the SQLite schema. Secrets are never stored in plain: secret_enc /
-- refresh_enc hold AES-256-GCM ciphertext and secret_fp a keyed HMAC for lookups by value.

CREATE TABLE pools (
    name        TEXT PRIMARY KEY,
    policy_json TEXT NOT NULL
);

CREATE TABLE tokens (
    id                TEXT PRIMARY KEY,
    pool              TEXT NOT NULL,
    name              TEXT NOT NULL,
    secret_enc        TEXT NOT NULL,
    secret_fp         TEXT NOT NULL UNIQUE,
    refresh_enc       TEXT,
    weight            BIGINT NOT NULL,
    expires_at        BIGINT,
    rpm               BIGINT,
    max_in_flight     BIGINT,
    state             TEXT NOT NULL,
    state_reason      TEXT,
    state_until       BIGINT,
    created_at        BIGINT NOT NULL,
    c_success         BIGINT NOT NULL DEFAULT 0,
    c_auth            BIGINT NOT NULL DEFAULT 0,
    c_rate_limited    BIGINT NOT NULL DEFAULT 0,
    c_quota_exhausted BIGINT NOT NULL DEFAULT 0,
    c_transient       BIGINT NOT NULL DEFAULT 0,
    c_client_error    BIGINT NOT NULL DEFAULT 0,
    c_unknown         BIGINT NOT NULL DEFAULT 0,
    last_used         BIGINT,
    last_error        TEXT,
    last_error_at     BIGINT,
    latency_ewma_ms   DOUBLE PRECISION,
    times_cooled      BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX tokens_pool ON tokens (pool);

CREATE TABLE events (
    seq          BIGSERIAL PRIMARY KEY,
    at           BIGINT NOT NULL,
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
    minute   BIGINT NOT NULL,
    requests BIGINT NOT NULL,
    failures BIGINT NOT NULL,
    PRIMARY KEY (token_id, minute)
);
CREATE INDEX token_minutes_minute ON token_minutes (minute, pool);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
