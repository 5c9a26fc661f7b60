//! OpenAPI operations of the token routes: the seed's `/api/token/*` and the management
//! `/api/tokens*` routes.

use super::{json_body, ok, path_param, q, r, s, Access, Op};
use serde_json::{json, Value};

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
                summary:
                    "Report the outcome of a lease (or the seed's token/success form, or a batch)",
                tag: "tokens",
                access: Access::Client,
                params: vec![],
                body: Some(json_body(s("Report"))),
                responses: vec![
                    (
                        "200",
                        ok(
                            "Recorded (a batch: one result per report, in order).",
                            json!({ "anyOf": [s("Reported"), s("ReportBatchResults")] }),
                        ),
                    ),
                    ("400", r("BadRequest")),
                    // A session cookie without its X-CSRF-Token (bearer keys need none); a
                    // report by id without the right to; a pool outside the key's scope.
                    ("403", r("Csrf")),
                    ("404", r("NotFound")),
                    ("409", r("Conflict")),
                    ("413", r("TooLarge")),
                ],
            },
        ),
        (
            "post",
            "/api/token/renew",
            Op {
                id: "renewLease",
                summary:
                    "Move an open lease's deadline (long uploads and streams keep their token)",
                tag: "tokens",
                access: Access::Client,
                params: vec![],
                body: Some(json_body(s("Renew"))),
                responses: vec![
                    ("200", ok("Renewed.", s("Renewed"))),
                    ("400", r("BadRequest")),
                    ("403", r("Csrf")),
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
                summary: "Totals and one row per token (seed route); optionally one page of rows",
                tag: "tokens",
                access: Access::Client,
                params: vec![
                    pool_q(),
                    q("offset", "Rows to skip (paging; without offset and limit every row is listed, as the seed did).", json!({ "type": "integer", "minimum": 0 })),
                    q("limit", "Rows in the page (default 100 when only offset is given).", limit_schema()),
                ],
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
                summary: "List tokens: one page, filtered, searched and sorted on the server",
                tag: "admin",
                access: Access::Admin,
                params: vec![
                    pool_q(),
                    q("state", "Only tokens in this state.", s("TokenState")),
                    q("q", "Case-insensitive substring of the name, the id or the masked token (never the secret).", json!({ "type": "string", "maxLength": 200 })),
                    q("sort", "Field to sort by, `-` in front for descending; names sort naturally (tok2 before tok10); rows without a value last. Default `name`.", sort_schema()),
                    q("offset", "Matching rows to skip (default 0).", json!({ "type": "integer", "minimum": 0 })),
                    q("limit", "Rows in the page (default 100).", limit_schema()),
                ],
                body: None,
                responses: vec![
                    (
                        "200",
                        ok(
                            "One page of tokens and the number of matching rows.",
                            json!({ "type": "object", "required": ["tokens", "total", "offset", "limit"], "properties": {
                                "tokens": { "type": "array", "items": s("TokenRow") },
                                "total": { "type": "integer", "minimum": 0, "description": "Rows matching the filters, over all pages." },
                                "offset": { "type": "integer", "minimum": 0 },
                                "limit": { "type": "integer", "minimum": 0 } } }),
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
                params: vec![
                    q(
                        "pool",
                        "Pool of imported tokens that name none.",
                        json!({ "type": "string" }),
                    ),
                    q(
                        "dry_run",
                        "Check and count only (added = would be added); nothing is written.",
                        json!({ "type": "boolean" }),
                    ),
                ],
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
    ]
}

fn limit_schema() -> Value {
    json!({ "type": "integer", "minimum": 0, "maximum": crate::service::listing::MAX_LIMIT })
}

fn sort_schema() -> Value {
    let names: Vec<String> = crate::service::listing::sort_names()
        .flat_map(|n| [n.to_string(), format!("-{n}")])
        .collect();
    json!({ "type": "string", "enum": names })
}
