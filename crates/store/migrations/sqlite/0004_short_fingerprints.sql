-- tokenlb store, SQLite, migration 4: secret fingerprints of 128 bits (32 hex digits), the
-- first half of the HMAC-SHA256 they were. Their unique index is what every import writes
-- at random places; at 1,000,000 tokens it was 79 MiB, rewritten into the WAL batch after
-- batch. 128 bits of a keyed MAC still never collide by chance (about 1e-27 at a million
-- tokens); the index now finds a token by its value as before.

UPDATE tokens SET secret_fp = substr(secret_fp, 1, 32) WHERE length(secret_fp) > 32;
