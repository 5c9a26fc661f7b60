//! The web API's own OpenAPI 3.1 document, served at `GET /api/openapi.json`.
//!
//! Written out by hand as one JSON value rather than derived from the handlers: the routes
//! are few, their answers are built by hand too (listings are pre-rendered bytes), and a
//! test holds the document against the router (every route documented, every documented
//! route served), so the two cannot drift apart unnoticed.

use serde_json::{json, Value};

fn error_response(description: &str) -> Value {
    json!({ "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

fn json_body(schema: &str) -> Value {
    json!({ "required": true,
        "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } } })
}

fn ok(description: &str, schema: &str) -> Value {
    json!({ "description": description,
        "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } } })
}

fn realtime_param() -> Value {
    json!({ "name": "realtime", "in": "query", "required": false,
        "description": "true: ask Wopan now (cached answer marked stale if that fails); false: the cache only; absent: the cache while fresh",
        "schema": { "type": "boolean" } })
}

fn write_errors(mut responses: Value) -> Value {
    let extra = [
        ("400", "bad input: a path with `..`, an empty name, a name with `/`, a folder into itself, a body that is not the documented JSON"),
        ("401", "the web API key is missing or wrong"),
        ("404", "a path, its parent or the target folder does not exist"),
        ("409", "the name is already taken in that folder"),
        ("502", "Wopan failed (a transient failure says the change may or may not have been made)"),
        ("503", "no token could be leased, or Wopan is rate limiting (Retry-After)"),
    ];
    if let Some(obj) = responses.as_object_mut() {
        for (code, text) in extra {
            obj.insert(code.to_string(), error_response(text));
        }
    }
    responses
}

fn secured() -> Value {
    json!([{ "bearer": [] }, { "apiKey": [] }])
}

/// The document.
pub fn document() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "tokenlb web API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The Wopan (联通云盘) drive through tokenlb's token pool: folders, files, download links, quota, and writes. Reads are open and fall back to the cache; writes need the web API key."
        },
        "paths": {
            "/api/folders": {
                "get": {
                    "summary": "Folders in the root, or in `folder`",
                    "parameters": [
                        { "name": "folder", "in": "query", "required": false, "schema": { "type": "string" }, "description": "A/B; the root when absent" },
                        realtime_param()
                    ],
                    "responses": {
                        "200": ok("the folders", "FolderListing"),
                        "400": error_response("bad path"),
                        "404": error_response("no such folder, or not cached (realtime=false)"),
                        "502": error_response("Wopan failed and nothing is cached"),
                        "503": error_response("no token and nothing is cached")
                    }
                },
                "post": {
                    "summary": "Create a folder (its parent must exist)",
                    "security": secured(),
                    "requestBody": json_body("PathBody"),
                    "responses": write_errors(json!({ "201": ok("the new folder", "EntryAnswer") }))
                }
            },
            "/api/files": {
                "get": {
                    "summary": "Every entry of a folder",
                    "parameters": [
                        { "name": "folder", "in": "query", "required": true, "schema": { "type": "string" } },
                        realtime_param()
                    ],
                    "responses": {
                        "200": ok("the entries", "FileListing"),
                        "400": error_response("bad path"),
                        "404": error_response("no such folder, or not cached (realtime=false)"),
                        "502": error_response("Wopan failed and nothing is cached"),
                        "503": error_response("no token and nothing is cached")
                    }
                },
                "delete": {
                    "summary": "Delete entries (to Wopan's recycle bin)",
                    "security": secured(),
                    "requestBody": json_body("PathsBody"),
                    "responses": write_errors(json!({ "200": ok("what was deleted", "Deleted") }))
                }
            },
            "/api/download/": {
                "get": {
                    "summary": "A download link, a 302 to it, or the bytes through tokenlb",
                    "parameters": [
                        { "name": "url", "in": "query", "required": true, "schema": { "type": "string" }, "description": "FOLDER/FILE" },
                        { "name": "redirect", "in": "query", "required": false, "schema": { "type": "boolean" } },
                        { "name": "proxy", "in": "query", "required": false, "schema": { "type": "boolean" }, "description": "stream the bytes; Range is passed on (206)" },
                        realtime_param()
                    ],
                    "responses": {
                        "200": ok("the link (or, with proxy=true, the file's bytes)", "Link"),
                        "206": { "description": "proxy=true with Range: part of the file" },
                        "302": { "description": "redirect=true: Location is the link" },
                        "400": error_response("bad path, or a folder"),
                        "404": error_response("no such file"),
                        "502": error_response("Wopan failed"),
                        "503": error_response("no token")
                    }
                }
            },
            "/api/rename": {
                "post": {
                    "summary": "Rename a file or folder in place",
                    "security": secured(),
                    "requestBody": json_body("RenameBody"),
                    "responses": write_errors(json!({ "200": ok("the renamed entry", "EntryAnswer") }))
                }
            },
            "/api/move": {
                "post": {
                    "summary": "Move entries into a folder",
                    "security": secured(),
                    "requestBody": json_body("TransferBody"),
                    "responses": write_errors(json!({ "200": ok("where each went", "Moved") }))
                }
            },
            "/api/copy": {
                "post": {
                    "summary": "Copy entries into a folder",
                    "security": secured(),
                    "requestBody": json_body("TransferBody"),
                    "responses": write_errors(json!({ "200": ok("where each copy is", "Copied") }))
                }
            },
            "/api/upload": {
                "put": {
                    "summary": "Upload a file (streamed to Wopan in 8 MiB parts on one token)",
                    "security": secured(),
                    "parameters": [
                        { "name": "path", "in": "query", "required": true, "schema": { "type": "string" }, "description": "FOLDER/NAME; the folder must exist, the name must be free" },
                        { "name": "Content-Length", "in": "header", "required": true, "schema": { "type": "integer" } }
                    ],
                    "requestBody": { "required": true, "content": { "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } } },
                    "responses": write_errors(json!({
                        "201": ok("the new file", "EntryAnswer"),
                        "411": error_response("no Content-Length"),
                        "413": error_response("larger than the configured limit")
                    }))
                }
            },
            "/api/usage": {
                "get": {
                    "summary": "The account's quota (QueryCloudUsageInfo)",
                    "parameters": [ realtime_param() ],
                    "responses": {
                        "200": ok("used and total bytes", "Usage"),
                        "404": error_response("not cached (realtime=false)"),
                        "502": error_response("Wopan failed and nothing is cached"),
                        "503": error_response("no token and nothing is cached")
                    }
                }
            },
            "/api/openapi.json": {
                "get": { "summary": "This document", "responses": { "200": { "description": "OpenAPI 3.1" } } }
            },
            "/healthz": {
                "get": { "summary": "Up, and what the token client thinks of the manager", "responses": { "200": { "description": "status" } } }
            },
            "/metrics": {
                "get": { "summary": "Prometheus metrics", "responses": { "200": { "description": "text exposition format" } } }
            }
        },
        "components": {
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer", "description": "the web API key (--api-key, TOKENLB_WEBAPI_KEY, or <data-dir>/webapi-key)" },
                "apiKey": { "type": "apiKey", "in": "header", "name": "X-API-Key" }
            },
            "schemas": {
                "Error": { "type": "object", "required": ["error"], "properties": {
                    "error": { "type": "object", "required": ["code", "message"], "properties": {
                        "code": { "type": "string" }, "message": { "type": "string" } } } } },
                "Entry": { "type": "object", "required": ["name", "id", "type", "size", "file_type", "create_time"], "properties": {
                    "name": { "type": "string" }, "id": { "type": "string" },
                    "type": { "type": "string", "enum": ["folder", "file"] },
                    "fid": { "type": "string", "description": "files only" },
                    "size": { "type": "integer" }, "file_type": { "type": "string" },
                    "create_time": { "type": "string", "description": "yyyyMMddHHmmss as Wopan sends it" } } },
                "Source": { "type": "object", "properties": {
                    "source": { "type": "string", "enum": ["realtime", "cache"] },
                    "cached_at": { "type": ["string", "null"], "format": "date-time" },
                    "stale": { "type": "boolean" } } },
                "FolderListing": { "allOf": [ { "$ref": "#/components/schemas/Source" }, { "type": "object", "properties": {
                    "folder": { "type": "string" }, "count": { "type": "integer" },
                    "folders": { "type": "array", "items": { "$ref": "#/components/schemas/Entry" } } } } ] },
                "FileListing": { "allOf": [ { "$ref": "#/components/schemas/Source" }, { "type": "object", "properties": {
                    "folder": { "type": "string" }, "count": { "type": "integer" },
                    "files": { "type": "array", "items": { "$ref": "#/components/schemas/Entry" } } } } ] },
                "Link": { "allOf": [ { "$ref": "#/components/schemas/Source" }, { "type": "object", "properties": {
                    "url": { "type": "string" }, "name": { "type": "string" }, "size": { "type": "integer" },
                    "download_url": { "type": "string" } } } ] },
                "Usage": { "allOf": [ { "$ref": "#/components/schemas/Source" }, { "type": "object", "required": ["used_bytes"], "properties": {
                    "used_bytes": { "type": "integer" }, "total_bytes": { "type": ["integer", "null"] } } } ] },
                "PathBody": { "type": "object", "required": ["path"], "additionalProperties": false,
                    "properties": { "path": { "type": "string", "examples": ["A/B"] } } },
                "RenameBody": { "type": "object", "required": ["path", "name"], "additionalProperties": false,
                    "properties": { "path": { "type": "string", "examples": ["A/f.mp4"] }, "name": { "type": "string", "examples": ["g.mp4"] } } },
                "TransferBody": { "type": "object", "required": ["paths", "to"], "additionalProperties": false, "properties": {
                    "paths": { "type": "array", "minItems": 1, "maxItems": crate::drive::MAX_PATHS, "items": { "type": "string" } },
                    "to": { "type": "string", "description": "a folder; \"\" is the root" } } },
                "PathsBody": { "type": "object", "required": ["paths"], "additionalProperties": false, "properties": {
                    "paths": { "type": "array", "minItems": 1, "maxItems": crate::drive::MAX_PATHS, "items": { "type": "string" } } } },
                "EntryAnswer": { "type": "object", "required": ["path", "entry"], "properties": {
                    "path": { "type": "string" }, "entry": { "$ref": "#/components/schemas/Entry" } } },
                "Moved": { "type": "object", "properties": { "moved": { "type": "array", "items": { "$ref": "#/components/schemas/FromTo" } } } },
                "Copied": { "type": "object", "properties": { "copied": { "type": "array", "items": { "$ref": "#/components/schemas/FromTo" } } } },
                "FromTo": { "type": "object", "properties": { "from": { "type": "string" }, "to": { "type": "string" } } },
                "Deleted": { "type": "object", "properties": { "deleted": { "type": "array", "items": { "type": "string" } } } }
            }
        }
    })
}

/// The routes the document describes, as (method, path) pairs.
pub fn documented_routes() -> Vec<(String, String)> {
    let doc = document();
    let mut out = Vec::new();
    if let Some(paths) = doc["paths"].as_object() {
        for (path, ops) in paths {
            if let Some(ops) = ops.as_object() {
                for method in ops.keys() {
                    out.push((method.to_uppercase(), path.clone()));
                }
            }
        }
    }
    out
}
