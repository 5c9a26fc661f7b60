//! The OpenAPI 3.1 document of the manager's HTTP API, served at `/api/openapi.json`.
//!
//! Built by hand as JSON so it can say exactly what the handlers do (the seed-compatible
//! shapes, the three ways to authenticate, the error object) without annotating every
//! handler. It drives generated access tests and schemathesis, so a unit test checks that it
//! names every route of [`crate::app::ROUTES`] and nothing else.

use serde_json::{json, Map, Value};

/// Who may call an operation.
#[derive(Clone, Copy)]
enum Access {
    Public,
    Client,
    Admin,
    /// Admin, and state-changing: cookie sessions must send X-CSRF-Token.
    AdminWrite,
}

fn security(a: Access) -> Value {
    match a {
        Access::Public => json!([]),
        // `{}`: open to loopback peers when no client keys are configured.
        Access::Client => json!([{ "clientKey": [] }, { "adminKey": [] }, { "session": [] }, {}]),
        Access::Admin | Access::AdminWrite => json!([{ "adminKey": [] }, { "session": [] }]),
    }
}

fn r(name: &str) -> Value {
    json!({ "$ref": format!("#/components/responses/{name}") })
}

fn s(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn ok(desc: &str, schema: Value) -> Value {
    json!({ "description": desc, "content": { "application/json": { "schema": schema } } })
}

fn q(name: &str, desc: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": desc, "schema": schema })
}

fn path_param(name: &str, desc: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": desc, "schema": { "type": "string", "minLength": 1 } })
}

fn json_body(schema: Value) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": schema } } })
}

struct Op {
    id: &'static str,
    summary: &'static str,
    tag: &'static str,
    access: Access,
    params: Vec<Value>,
    body: Option<Value>,
    responses: Vec<(&'static str, Value)>,
}

fn operation(op: Op) -> Value {
    let mut responses = Map::new();
    for (code, v) in op.responses {
        responses.insert(code.to_string(), v);
    }
    match op.access {
        Access::Public => {}
        Access::Client | Access::Admin => {
            responses.insert("401".into(), r("Unauthorized"));
        }
        Access::AdminWrite => {
            responses.insert("401".into(), r("Unauthorized"));
            responses.insert("403".into(), r("Csrf"));
        }
    }
    let mut params = op.params;
    if matches!(op.access, Access::AdminWrite) {
        params.push(json!({ "name": "X-CSRF-Token", "in": "header", "required": false,
            "description": "Required with a session cookie (the csrf_token from login); not with a bearer key.",
            "schema": { "type": "string" } }));
    }
    let mut o = json!({
        "operationId": op.id,
        "summary": op.summary,
        "tags": [op.tag],
        "security": security(op.access),
        "parameters": params,
        "responses": responses,
    });
    if let Some(b) = op.body {
        o["requestBody"] = b;
    }
    o
}

fn operations() -> Vec<(&'static str, &'static str, Op)> {
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
            "/api/token/get",
            Op {
                id: "getToken",
                summary: "Lease a token (seed route)",
                tag: "tokens",
                access: Access::Client,
                params: vec![
                    q(
                        "strategy",
                        "Load-balancing strategy; the pool's default when absent.",
                        s("Strategy"),
                    ),
                    pool_q(),
                    q(
                        "wait_ms",
                        "Wait up to this long for a token to become eligible.",
                        json!({ "type": "integer", "minimum": 0, "maximum": 30000 }),
                    ),
                ],
                body: None,
                responses: vec![
                    ("200", ok("A lease.", s("Lease"))),
                    ("400", r("BadRequest")),
                    ("404", r("NotFound")),
                    ("503", r("NoToken")),
                ],
            },
        ),
        (
            "post",
            "/api/token/add",
            Op {
                id: "addToken",
                summary: "Add a token (seed route)",
                tag: "tokens",
                access: Access::AdminWrite,
                params: vec![],
                body: Some(json_body(s("AddToken"))),
                responses: vec![
                    ("201", ok("The token's record, masked.", s("TokenRow"))),
                    ("400", r("BadRequest")),
                    ("409", r("Conflict")),
                    ("413", r("TooLarge")),
                ],
            },
        ),
        (
            "delete",
            "/api/token/remove",
            Op {
                id: "removeToken",
                summary: "Remove a token by value or id (seed route)",
                tag: "tokens",
                access: Access::AdminWrite,
                params: vec![],
                body: Some(json_body(s("TokenRef"))),
                responses: vec![
                    ("200", ok("Removed.", s("Removed"))),
                    ("400", r("BadRequest")),
                    ("404", r("NotFound")),
                    ("413", r("TooLarge")),
                ],
            },
        ),
        (
            "post",
            "/api/token/report",
            Op {
                id: "reportOutcome",
                summary: "Report the outcome of a lease (or the seed's token/success form)",
                tag: "tokens",
                access: Access::Client,
                params: vec![],
                body: Some(json_body(s("Report"))),
                responses: vec![
                    ("200", ok("Recorded.", s("Reported"))),
                    ("400", r("BadRequest")),
                    ("404", r("NotFound")),
                    ("413", r("TooLarge")),
                ],
            },
        ),
        (
            "get",
            "/api/token/stats",
            Op {
                id: "tokenStats",
                summary: "Totals and one row per token (seed route)",
                tag: "tokens",
                access: Access::Client,
                params: vec![pool_q()],
                body: None,
                responses: vec![
                    ("200", ok("Statistics.", s("Stats"))),
                    ("400", r("BadRequest")),
                    ("404", r("NotFound")),
                ],
            },
        ),
        (
            "get",
            "/api/tokens",
            Op {
                id: "listTokens",
                summary: "List tokens",
                tag: "admin",
                access: Access::Admin,
                params: vec![
                    pool_q(),
                    q("state", "Only tokens in this state.", s("TokenState")),
                ],
                body: None,
                responses: vec![
                    (
                        "200",
                        ok(
                            "Tokens.",
                            json!({ "type": "object", "required": ["tokens"], "properties": { "tokens": { "type": "array", "items": s("TokenRow") } } }),
                        ),
                    ),
                    ("400", r("BadRequest")),
                    ("404", r("NotFound")),
                ],
            },
        ),
        (
            "patch",
            "/api/tokens/{id}",
            Op {
                id: "patchToken",
                summary: "Change name, weight, enabled, expiry or limits",
                tag: "admin",
                access: Access::AdminWrite,
                params: vec![path_param("id", "Token id.")],
                body: Some(json_body(s("Patch"))),
                responses: vec![
                    ("200", ok("The token's record.", s("TokenRow"))),
                    ("400", r("BadRequest")),
                    ("404", r("NotFound")),
                    ("413", r("TooLarge")),
                ],
            },
        ),
        (
            "post",
            "/api/tokens/{id}/check",
            Op {
                id: "checkToken",
                summary: "Run the pool's health check on a token now",
                tag: "admin",
                access: Access::AdminWrite,
                params: vec![path_param("id", "Token id.")],
                body: None,
                responses: vec![
                    ("200", ok("The check's result.", s("CheckResult"))),
                    ("404", r("NotFound")),
                    ("409", r("Conflict")),
                ],
            },
        ),
        (
            "post",
            "/api/tokens/import",
            Op {
                id: "importTokens",
                summary: "Import tokens.json or a list (one token per line), merged by value",
                tag: "admin",
                access: Access::AdminWrite,
                params: vec![q(
                    "pool",
                    "Pool of imported tokens that name none.",
                    json!({ "type": "string" }),
                )],
                body: Some(json!({ "required": true, "content": {
                "application/json": { "schema": s("TokensFile") },
                "text/plain": { "schema": { "type": "string" } } } })),
                responses: vec![
                    ("200", ok("What the import did.", s("ImportSummary"))),
                    ("400", r("BadRequest")),
                    ("413", r("TooLarge")),
                ],
            },
        ),
        (
            "get",
            "/api/tokens/export",
            Op {
                id: "exportTokens",
                summary: "Export every token with its full value (tokens.json format)",
                tag: "admin",
                access: Access::Admin,
                params: vec![],
                body: None,
                responses: vec![(
                    "200",
                    ok("tokens.json (as an attachment).", s("TokensFile")),
                )],
            },
        ),
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
                    json!({ "description": "Text exposition format.", "content": { "text/plain": { "schema": { "type": "string" } } } }),
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

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for (method, path, op) in operations() {
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[method] = operation(op);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "tokenlb manager",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Token load balancer: lease tokens, report outcomes, manage the pool. Errors are {\"error\":{\"code\",\"message\"}}."
        },
        "paths": paths,
        "components": crate::openapi_schemas::components(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn every_route_is_documented_and_nothing_else() {
        let doc = document();
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                documented.insert((method.clone(), path.clone()));
            }
        }
        let routed: BTreeSet<(String, String)> = crate::app::ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        assert_eq!(documented, routed);
    }

    #[test]
    fn every_reference_resolves() {
        let doc = document();
        let text = doc.to_string();
        for part in text.split("\"$ref\":\"#/components/").skip(1) {
            let target = &part[..part.find('"').unwrap()];
            let (kind, name) = target.split_once('/').unwrap();
            assert!(
                doc["components"][kind][name].is_object(),
                "dangling $ref {target}"
            );
        }
    }
}
