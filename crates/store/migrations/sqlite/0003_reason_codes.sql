-- tokenlb store, SQLite, migration 3: reasons as codes with parameters, so a UI can word an
-- event in any language. `reason_code` is the change's cause (or the event's kind), and
-- `reason_params` a JSON object of its parameters; older rows keep NULL (the words only).

ALTER TABLE events ADD COLUMN reason_code TEXT;
ALTER TABLE events ADD COLUMN reason_params TEXT;
