//! The OpenAPI 3.1 document of the manager's HTTP API, served at `/api/openapi.json`.
//!
//! Built by hand as JSON so it can say exactly what the handlers do (the seed-compatible
//! shapes, the three ways to authenticate, the error object) without annotating every
//! handler. It drives generated access tests and schemathesis, so a unit test checks that it
//! names every route of [`crate::app::ROUTES`] and nothing else.

mod paths_other;
mod paths_proxy;
mod paths_tokens;
mod schemas;

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
    let json_only = op.body.as_ref().is_some_and(|b| {
        b["content"]
            .as_object()
            .is_some_and(|c| c.len() == 1 && c.contains_key("application/json"))
    });
    if json_only {
        responses.insert("415".into(), r("UnsupportedMediaType"));
    }
    // Every listener refuses a foreign Host (DESIGN §9).
    responses.insert("421".into(), r("Misdirected"));
    match op.access {
        Access::Public => {}
        Access::Client => {
            responses.insert("401".into(), r("Unauthorized"));
            // A scoped key outside its pools.
            responses.entry("403").or_insert_with(|| r("Csrf"));
        }
        Access::Admin => {
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

/// Every operation: (method, path, description).
fn operations() -> Vec<(&'static str, &'static str, Op)> {
    let mut ops = paths_tokens::operations();
    ops.extend(paths_other::operations());
    ops.extend(paths_proxy::operations());
    ops
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
        "components": schemas::components(),
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
