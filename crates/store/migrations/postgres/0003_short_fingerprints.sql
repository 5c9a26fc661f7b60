-- tokenlb store, PostgreSQL, migration 3: secret fingerprints of 128 bits (32 hex digits),
-- the first half of the HMAC-SHA256 they were, as in SQLite (its migration 4): both
-- backends compute them with the same function. 128 bits of a keyed MAC still never collide
-- by chance (about 1e-27 at a million tokens).

UPDATE tokens SET secret_fp = substr(secret_fp, 1, 32) WHERE length(secret_fp) > 32;
