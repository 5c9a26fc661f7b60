//! OpenAPI operations of the other routes: events, dashboard data, login, UI pages and
//! operations endpoints.

use super::{json_body, ok, path_param, q, r, s, Access, Op};
use serde_json::json;

pub(super) fn operations() -> Vec<(&'static str, &'static str, Op)> {
    let pool_q = || {
        q(
            "pool",
            "Pool name (default `default`).",
            json!({ "type": "string" }),
        )
    };
    vec![
        (
            "get",
            "/api/events",
            Op {
                id: "listEvents",
                summary: "State changes and admin actions, newest first",
                tag: "admin",
                access: Access::Admin,
                params: vec![
                    q(
                        "limit",
                        "How many (1–1000, default 100).",
                        json!({ "type": "integer", "minimum": 1, "maximum": 1000 }),
                    ),
                    q("token", "Only this token id.", json!({ "type": "string" })),
                    pool_q(),
                    q(
                        "before",
                        "Only events with a smaller id (paging).",
                        json!({ "type": "integer" }),
                    ),
                    q(
                        "since",
                        "Only events at or after this time.",
                        json!({ "type": "string", "format": "date-time" }),
                    ),
                ],
                body: None,
                responses: vec![
                    (
                        "200",
                        ok(
                            "Events.",
                            json!({ "type": "object", "required": ["events"], "properties": { "events": { "type": "array", "items": s("Event") } } }),
                        ),
                    ),
                    ("400", r("BadRequest")),
                ],
            },
        ),
        (
            "get",
            "/api/stats/minutes",
            Op {
                id: "minuteStats",
                summary: "Requests and failures per minute, zero-filled",
                tag: "admin",
                access: Access::Admin,
                params: vec![
                    q(
                        "window",
                        "1h or 24h (default 1h).",
                        json!({ "type": "string", "enum": ["1h", "24h"] }),
                    ),
                    pool_q(),
                    q("token", "Only this token id.", json!({ "type": "string" })),
                ],
                body: None,
                responses: vec![
                    ("200", ok("The series.", s("Minutes"))),
                    ("400", r("BadRequest")),
                    ("404", r("NotFound")),
                ],
            },
        ),
        (
            "get",
            "/api/pools",
            Op {
                id: "listPools",
                summary: "Pools with strategy and token counts",
                tag: "admin",
                access: Access::Admin,
                params: vec![],
                body: None,
                responses: vec![(
                    "200",
                    ok("Pools.", json!({ "type": "array", "items": s("Pool") })),
                )],
            },
        ),
        (
            "post",
            "/api/auth/login",
            Op {
                id: "login",
                summary: "Admin UI login; sets the session cookie",
                tag: "auth",
                access: Access::Public,
                params: vec![],
                body: Some(json_body(s("Login"))),
                responses: vec![
                    (
                        "200",
                        ok("Logged in (Set-Cookie: tokenlb_session).", s("Me")),
                    ),
                    ("400", r("BadRequest")),
                    ("401", r("Unauthorized")),
                    ("413", r("TooLarge")),
                    ("429", r("TooMany")),
                ],
            },
        ),
        (
            "post",
            "/api/auth/logout",
            Op {
                id: "logout",
                summary: "End the session and clear the cookie",
                tag: "auth",
                access: Access::Public,
                params: vec![],
                body: None,
                responses: vec![(
                    "200",
                    ok(
                        "Logged out.",
                        json!({ "type": "object", "properties": { "ok": { "type": "boolean" } } }),
                    ),
                )],
            },
        ),
        (
            "get",
            "/api/auth/me",
            Op {
                id: "me",
                summary: "The session's user and CSRF token",
                tag: "auth",
                access: Access::Public,
                params: vec![],
                body: None,
                responses: vec![
                    ("200", ok("The session.", s("Me"))),
                    ("401", r("Unauthorized")),
                ],
            },
        ),
        (
            "get",
            "/",
            Op {
                id: "dashboard",
                summary: "Admin dashboard page (redirects to /login without a session)",
                tag: "ui",
                access: Access::Public,
                params: vec![],
                body: None,
                responses: vec![
                    (
                        "200",
                        json!({ "description": "HTML page.", "content": { "text/html": { "schema": { "type": "string" } } } }),
                    ),
                    ("303", json!({ "description": "Redirect to /login." })),
                ],
            },
        ),
        (
            "get",
            "/login",
            Op {
                id: "loginPage",
                summary: "Login page",
                tag: "ui",
                access: Access::Public,
                params: vec![],
                body: None,
                responses: vec![(
                    "200",
                    json!({ "description": "HTML page.", "content": { "text/html": { "schema": { "type": "string" } } } }),
                )],
            },
        ),
        (
            "get",
            "/assets/{file}",
            Op {
                id: "asset",
                summary: "Embedded UI file",
                tag: "ui",
                access: Access::Public,
                params: vec![path_param("file", "File name, e.g. app.js.")],
                body: None,
                responses: vec![
                    ("200", json!({ "description": "The file." })),
                    ("304", json!({ "description": "Not modified (ETag)." })),
                    ("404", r("NotFound")),
                ],
            },
        ),
        (
            "get",
            "/metrics",
            Op {
                id: "metrics",
                summary: "Prometheus metrics",
                tag: "ops",
                access: Access::Public,
                params: vec![],
                body: None,
                responses: vec![(
                    "200",
                    json!({ "description": "Prometheus text exposition format (0.0.4), every family with HELP and TYPE: picks, outcomes, token states, in flight, HTTP requests; the DESIGN §13 histograms (tokenlb_http_request_duration_seconds by route, method and status class; tokenlb_pick_duration_seconds by pool; tokenlb_reported_latency_seconds by pool and class), tokenlb_state_changes_total{pool,from,to,reason}, tokenlb_tokens_eligible, tokenlb_tokens_expiring_24h, per-token series when metrics.per_token is on (id and name, never the secret), tokenlb_proxy_requests_total, the notification counters, tokenlb_build_info and the process_* series. The README's \"Metrics and dashboard\" lists them.", "content": { "text/plain": { "schema": { "type": "string" } } } }),
                )],
            },
        ),
        (
            "get",
            "/healthz",
            Op {
                id: "healthz",
                summary: "Liveness",
                tag: "ops",
                access: Access::Public,
                params: vec![],
                body: None,
                responses: vec![(
                    "200",
                    ok(
                        "Alive.",
                        json!({ "type": "object", "properties": { "status": { "type": "string" } } }),
                    ),
                )],
            },
        ),
        (
            "get",
            "/readyz",
            Op {
                id: "readyz",
                summary: "Readiness (the store answers)",
                tag: "ops",
                access: Access::Public,
                params: vec![],
                body: None,
                responses: vec![
                    (
                        "200",
                        ok(
                            "Ready.",
                            json!({ "type": "object", "properties": { "status": { "type": "string" }, "tokens": { "type": "integer" } } }),
                        ),
                    ),
                    ("503", r("NotReady")),
                ],
            },
        ),
        (
            "get",
            "/api/openapi.json",
            Op {
                id: "openapi",
                summary: "This document",
                tag: "ops",
                access: Access::Public,
                params: vec![],
                body: None,
                responses: vec![("200", ok("OpenAPI 3.1.", json!({ "type": "object" })))],
            },
        ),
    ]
}
