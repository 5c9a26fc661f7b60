//! The `components` of the OpenAPI document: security schemes, shared error responses and
//! the JSON schemas of every request and answer body (kept apart from the paths so each file
//! stays readable).

use serde_json::{json, Value};

fn err(desc: &str) -> Value {
    json!({ "description": desc, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

fn with_retry_after(mut v: Value) -> Value {
    v["headers"] = json!({ "Retry-After": { "description": "Seconds to wait.", "schema": { "type": "integer", "minimum": 1 } } });
    v
}

const TIME: &str = "RFC 3339 time (UTC) or null.";

fn time() -> Value {
    json!({ "type": ["string", "null"], "format": "date-time", "description": TIME })
}

fn token_row() -> Value {
    json!({
        "type": "object",
        "required": ["id", "name", "pool", "token", "state", "success", "failure", "success_rate", "in_flight"],
        "properties": {
            "id": { "type": "string" },
            "name": { "type": "string" },
            "pool": { "type": "string" },
            "token": { "type": "string", "description": "Masked: abcd…wxyz." },
            "state": { "$ref": "#/components/schemas/TokenState" },
            "state_reason": { "type": ["string", "null"] },
            "state_reason_code": { "type": ["string", "null"], "description": "The reason as a code for translation: a change cause (auth_failure, rate_limited, quota_exhausted, consecutive_failures, error_rate, probe_failed, probe_succeeded, cooling_ended, expired, health_check, refreshed, admin, other)." },
            "state_reason_params": { "type": "object", "additionalProperties": { "type": "string" }, "description": "The code's parameters (seconds, count, rate, by, …)." },
            "state_until": time(),
            "half_open": { "type": "boolean" },
            "weight": { "type": "integer", "minimum": 1, "maximum": 1000 },
            "limits": { "$ref": "#/components/schemas/Limits" },
            "success": { "type": "integer" },
            "failure": { "type": "integer" },
            "failures_by_class": { "type": "object", "additionalProperties": { "type": "integer" } },
            "success_rate": { "type": ["number", "null"], "minimum": 0, "maximum": 1, "description": "null before the first success or token failure." },
            "in_flight": { "type": "integer" },
            "last_used": time(),
            "last_error": { "type": ["string", "null"] },
            "last_error_at": time(),
            "expires_at": time(),
            "has_refresh_token": { "type": "boolean" },
            "latency_ms": { "type": ["number", "null"] },
            "created_at": time()
        }
    })
}

fn schemas() -> Value {
    let outcome = json!({ "type": "string", "enum": ["success", "auth", "rate_limited", "quota_exhausted", "transient", "client_error", "unknown"] });
    json!({
        "Error": { "type": "object", "required": ["error"], "properties": { "error": {
            "type": "object", "required": ["code", "message"],
            "properties": { "code": { "type": "string" }, "message": { "type": "string" } } } } },
        "Strategy": { "type": "string", "enum": ["round_robin", "best", "weighted", "random", "least_in_flight", "latency"] },
        "TokenState": { "type": "string", "enum": ["active", "cooling", "invalid", "disabled", "expired"] },
        "Outcome": outcome,
        "Limits": { "type": "object", "additionalProperties": false, "properties": {
            "rpm": { "type": ["integer", "null"], "minimum": 0 },
            "max_in_flight": { "type": ["integer", "null"], "minimum": 0 } } },
        "Lease": { "type": "object", "required": ["token", "id", "name", "pool", "lease", "lease_expires_at"], "properties": {
            "token": { "type": "string", "description": "The full token value." },
            "id": { "type": "string" }, "name": { "type": "string" }, "pool": { "type": "string" },
            "lease": { "type": "string", "description": "Lease id to report against." },
            "lease_expires_at": { "type": "string", "format": "date-time" } } },
        "AddToken": { "type": "object", "required": ["token"], "additionalProperties": false, "properties": {
            "token": { "type": "string", "minLength": 1, "maxLength": 4096 },
            "name": { "type": "string", "minLength": 1, "maxLength": 200 },
            "pool": { "type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$" },
            "weight": { "type": "integer", "minimum": 1, "maximum": 1000 },
            "expires_at": { "type": "string", "format": "date-time" },
            "refresh_token": { "type": "string", "minLength": 1, "maxLength": 4096 },
            "limits": { "$ref": "#/components/schemas/Limits" },
            "is_active": { "type": "boolean" } } },
        "TokenRef": { "type": "object", "additionalProperties": false, "description": "Give token or id.", "properties": {
            "token": { "type": "string" }, "id": { "type": "string" } } },
        "Removed": { "type": "object", "properties": { "ok": { "type": "boolean" }, "id": { "type": "string" }, "name": { "type": "string" } } },
        "Report": { "type": "object", "additionalProperties": false,
            "description": "Either {lease, outcome, …}, the seed's {token|id, success, error?} (by id or value: the admin, or a client key with report_by_id, only; else 403), or a batch {reports: [Report, …]} (at most 1,000, nothing beside it), answered by ReportBatchResults in the same order.",
            "properties": {
                "reports": { "type": "array", "maxItems": 1000, "items": { "$ref": "#/components/schemas/Report" } },
                "lease": { "type": "string" },
                "outcome": { "$ref": "#/components/schemas/Outcome" },
                "latency_ms": { "type": "integer", "minimum": 0 },
                "status": { "type": "integer", "minimum": 0, "maximum": 65535 },
                "retry_after_s": { "type": "integer", "minimum": 0 },
                "error": { "type": "string" },
                "token": { "type": "string" },
                "id": { "type": "string" },
                "token_id": { "type": "string", "description": "With lease: the token the caller believes holds it; another holder is 409 (DESIGN §9)." },
                "success": { "type": "boolean" } } },
        "Reported": { "type": "object", "properties": { "ok": { "type": "boolean" }, "id": { "type": "string" },
            "state": { "$ref": "#/components/schemas/TokenState" },
            "forwarded": { "type": "boolean", "description": "Settled by the cluster instance that holds the lease." } } },
        "Renew": { "type": "object", "required": ["lease"], "additionalProperties": false, "properties": {
            "lease": { "type": "string" },
            "extend_s": { "type": "integer", "minimum": 1, "maximum": 3600,
                "description": "New deadline, in seconds from now (default: the pool's lease_ttl_s)." } } },
        "Renewed": { "type": "object", "properties": { "id": { "type": "string" }, "lease": { "type": "string" },
            "lease_expires_at": { "type": "string", "format": "date-time" } } },
        "ReportBatchResults": { "type": "object", "required": ["results"], "properties": {
            "results": { "type": "array", "items": { "anyOf": [
                { "$ref": "#/components/schemas/Reported" },
                { "type": "object", "required": ["error"], "properties": { "error": { "type": "object", "properties": {
                    "code": { "type": "string" }, "message": { "type": "string" } } } } } ] } } } },
        "TokenRow": token_row(),
        "Stats": { "type": "object", "required": ["total_tokens", "active_tokens", "total_requests", "success_rate", "tokens"], "properties": {
            "total_tokens": { "type": "integer" }, "active_tokens": { "type": "integer" },
            "total_requests": { "type": "integer" },
            "success_rate": { "type": ["number", "null"], "description": "null while nothing has been counted." },
            "tokens": { "type": "array", "items": { "$ref": "#/components/schemas/TokenRow" } },
            "offset": { "type": "integer", "description": "Present when a page was asked for." },
            "limit": { "type": "integer", "description": "Present when a page was asked for." } } },
        "Patch": { "type": "object", "additionalProperties": false, "properties": {
            "name": { "type": "string", "minLength": 1, "maxLength": 200 },
            "weight": { "type": "integer", "minimum": 1, "maximum": 1000 },
            "enabled": { "type": "boolean" },
            "expires_at": { "type": ["string", "null"], "format": "date-time" },
            "limits": { "$ref": "#/components/schemas/Limits" } } },
        "CheckResult": { "type": "object", "required": ["id", "ok", "outcome", "state"], "properties": {
            "id": { "type": "string" }, "ok": { "type": "boolean" },
            "outcome": { "$ref": "#/components/schemas/Outcome" },
            "status": { "type": ["integer", "null"] }, "latency_ms": { "type": ["integer", "null"] },
            "message": { "type": ["string", "null"] },
            "state": { "$ref": "#/components/schemas/TokenState" },
            "state_reason": { "type": ["string", "null"] } } },
        "TokensFile": { "type": "object", "required": ["tokens"], "properties": { "tokens": { "type": "array", "items": {
            "type": "object", "required": ["token"], "properties": {
                "token": { "type": "string" }, "name": { "type": "string" }, "is_active": { "type": "boolean" },
                "pool": { "type": "string" }, "weight": { "type": "integer" },
                "expires_at": { "type": "string", "format": "date-time" }, "refresh_token": { "type": "string" } } } } } },
        "ImportSummary": { "type": "object", "required": ["added", "skipped", "errors"], "properties": {
            "added": { "type": "integer" }, "skipped": { "type": "integer" },
            "dry_run": { "type": "boolean", "description": "Present (true) when nothing was written." },
            "errors": { "type": "array", "items": { "type": "object", "properties": {
                "line": { "type": "integer" }, "entry": { "type": "integer" }, "message": { "type": "string" } } } } } },
        "Event": { "type": "object", "required": ["id", "at", "token_id", "kind", "reason"], "properties": {
            "id": { "type": "integer" }, "at": { "type": "string", "format": "date-time" },
            "token_id": { "type": "string" }, "token_name": { "type": "string" }, "pool": { "type": "string" },
            "kind": { "type": "string" },
            "from": { "oneOf": [{ "$ref": "#/components/schemas/TokenState" }, { "type": "null" }] },
            "to": { "oneOf": [{ "$ref": "#/components/schemas/TokenState" }, { "type": "null" }] },
            "reason": { "type": "string" },
            "reason_code": { "type": ["string", "null"], "description": "The change's cause, or the event's kind (added, removed, patched, refreshed, …); null on events recorded before codes were kept." },
            "reason_params": { "type": "object", "additionalProperties": { "type": "string" } },
            "error": { "type": ["string", "null"] } } },
        "Minutes": { "type": "object", "required": ["window", "minutes"], "properties": {
            "window": { "type": "string", "enum": ["1h", "24h"] },
            "minutes": { "type": "array", "items": { "type": "object", "required": ["t", "requests", "failures"], "properties": {
                "t": { "type": "integer", "description": "Epoch ms of the minute's start." },
                "requests": { "type": "integer" }, "failures": { "type": "integer" } } } } } },
        "Pool": { "type": "object", "required": ["name", "strategy", "tokens", "active"], "properties": {
            "name": { "type": "string" }, "strategy": { "$ref": "#/components/schemas/Strategy" },
            "tokens": { "type": "integer" }, "active": { "type": "integer" }, "in_flight": { "type": "integer" },
            "health": { "type": "string", "enum": ["none", "http", "wopan"] } } },
        "Login": { "type": "object", "required": ["username", "password"], "additionalProperties": false, "properties": {
            "username": { "type": "string" }, "password": { "type": "string" } } },
        "Me": { "type": "object", "required": ["username", "csrf_token"], "properties": {
            "username": { "type": "string" }, "csrf_token": { "type": "string" } } }
    })
}

/// `components`: security schemes, shared responses, schemas.
pub fn components() -> Value {
    json!({
        "securitySchemes": {
            "adminKey": { "type": "http", "scheme": "bearer", "description": "The admin key (TOKENLB_ADMIN_KEY or data_dir/admin-key)." },
            "clientKey": { "type": "http", "scheme": "bearer", "description": "A client key (TOKENLB_CLIENT_KEYS). Without client keys configured, client routes are open to loopback peers only." },
            "session": { "type": "apiKey", "in": "cookie", "name": "tokenlb_session", "description": "Admin UI session from /api/auth/login; unsafe methods also need X-CSRF-Token." }
        },
        "responses": {
            "BadRequest": err("Malformed JSON, wrong types, unknown strategy or invalid values."),
            "Unauthorized": with_retry_after(err("Missing or wrong credentials.")).as_object().map(|o| {
                let mut o = o.clone();
                o.insert("headers".into(), json!({ "WWW-Authenticate": { "schema": { "type": "string" } } }));
                Value::Object(o)
            }).unwrap_or(Value::Null),
            "Csrf": err("A session-authenticated unsafe request without the right X-CSRF-Token; or (client routes) a client key used outside its pools, or a report by token id or value without the right to (DESIGN §9)."),
            "Misdirected": err("The Host header names none of this server's names (DESIGN §9's Host check; add the name to allowed_hosts)."),
            "NotFound": err("Unknown token, lease, pool or route."),
            "Conflict": err("Duplicate token, a check already running / not configured, or a report whose token_id is not the lease's holder."),
            "TooLarge": err("Request body larger than max_body_bytes."),
            "UnsupportedMediaType": err("The body is not sent as application/json."),
            "TooMany": with_retry_after(err("Too many failed logins from this address.")),
            "NoToken": with_retry_after(err("No token is eligible now.")),
            "NotReady": err("The store does not answer.")
        },
        "schemas": schemas(),
    })
}
