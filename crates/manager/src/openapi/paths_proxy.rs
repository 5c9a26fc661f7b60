//! OpenAPI operations of proxy mode (DESIGN §10): the proxied routes themselves, the route
//! list of the admin UI and the classification check.

use super::{ok, path_param, q, r, Access, Op};
use serde_json::json;

fn proxied(method: &'static str, id: &'static str) -> (&'static str, &'static str, Op) {
    (
        method,
        "/proxy/{name}/{path}",
        Op {
            id,
            summary: "Forward a request to the route's upstream with a pool token injected",
            tag: "proxy",
            access: Access::Client,
            params: vec![
                path_param("name", "A `[[proxy]]` route's name."),
                path_param(
                    "path",
                    "Path appended to the route's upstream (the query is kept).",
                ),
            ],
            body: None,
            responses: vec![
                (
                    "default",
                    json!({
                        "description": "The upstream's answer, streamed; with x-tokenlb-token-id (the token's id, never the secret) and x-tokenlb-attempts.",
                        "headers": {
                            "x-tokenlb-token-id": { "schema": { "type": "string" } },
                            "x-tokenlb-attempts": { "schema": { "type": "integer" } }
                        }
                    }),
                ),
                ("404", r("NotFound")),
                (
                    "502",
                    json!({ "description": "The upstream could not be reached (connection error or timeout) on every attempt." }),
                ),
                ("503", r("NoToken")),
            ],
        },
    )
}

pub(super) fn operations() -> Vec<(&'static str, &'static str, Op)> {
    vec![
        proxied("get", "proxyGet"),
        proxied("post", "proxyPost"),
        proxied("put", "proxyPut"),
        proxied("patch", "proxyPatch"),
        proxied("delete", "proxyDelete"),
        (
            "get",
            "/api/proxies",
            Op {
                id: "listProxies",
                summary: "Proxy routes with their pools and per-class request counts",
                tag: "proxy",
                access: Access::Admin,
                params: vec![],
                body: None,
                responses: vec![(
                    "200",
                    ok(
                        "The configured routes.",
                        json!({ "type": "object", "required": ["proxies"], "properties": { "proxies": { "type": "array", "items": {
                            "type": "object",
                            "required": ["name", "upstream", "pool", "counts"],
                            "properties": {
                                "name": { "type": "string" }, "path": { "type": "string" },
                                "upstream": { "type": "string" }, "pool": { "type": "string" },
                                "strategy": { "type": ["string", "null"] }, "inject": { "type": "string" },
                                "retries": { "type": "integer" }, "timeout_s": { "type": "integer" },
                                "wait_ms": { "type": "integer" }, "rules": { "type": "integer" },
                                "counts": { "type": "object", "additionalProperties": { "type": "integer" } }
                            }
                        } } } }),
                    ),
                )],
            },
        ),
        (
            "post",
            "/api/proxy/{name}/check",
            Op {
                id: "checkProxy",
                summary: "Make one request through a route and say how its answer was classified",
                tag: "proxy",
                access: Access::AdminWrite,
                params: vec![
                    path_param("name", "A `[[proxy]]` route's name."),
                    q(
                        "path",
                        "Path (and query) after /proxy/NAME; `/` by default.",
                        json!({ "type": "string" }),
                    ),
                    q(
                        "method",
                        "HTTP method; GET by default.",
                        json!({ "type": "string" }),
                    ),
                ],
                body: None,
                responses: vec![
                    (
                        "200",
                        ok(
                            "The classification (the outcome was reported like any other).",
                            json!({ "type": "object", "required": ["proxy", "pool", "class"], "properties": {
                                "proxy": { "type": "string" }, "pool": { "type": "string" },
                                "method": { "type": "string" }, "path": { "type": "string" },
                                "token_id": { "type": "string" }, "status": { "type": ["integer", "null"] },
                                "class": { "type": "string", "enum": ["success", "auth", "rate_limited", "quota_exhausted", "transient", "client_error", "unknown"] },
                                "rule": { "type": ["object", "null"] },
                                "retry_after_s": { "type": ["integer", "null"] },
                                "latency_ms": { "type": "integer" }, "error": { "type": ["string", "null"] }
                            } }),
                        ),
                    ),
                    ("400", r("BadRequest")),
                    ("404", r("NotFound")),
                    ("503", r("NoToken")),
                ],
            },
        ),
    ]
}
