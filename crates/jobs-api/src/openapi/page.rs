//! The API reference page: plain HTML rendered from the OpenAPI document, loading nothing from elsewhere.
//!
//! Routes are grouped by tag, in the document's tag order; `code` in descriptions becomes `<code>`.

use std::fmt::Write;

use serde_json::Value;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;color:#222}\
code,pre{font-family:ui-monospace,monospace}pre{background:#f6f6f6;padding:.5rem;overflow-x:auto}\
section{border-top:1px solid #ddd;padding:.5rem 0}h3 code{font-size:1rem}\
.m{display:inline-block;min-width:4rem;font-weight:bold;text-transform:uppercase}\
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left;vertical-align:top}";

/// The whole page.
pub(super) fn render(doc: &Value) -> String {
    let title = doc["info"]["title"].as_str().unwrap_or("API");
    let version = doc["info"]["version"].as_str().unwrap_or_default();
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} API {version}</title>\
         <style>{STYLE}</style></head><body><h1>{title} API <small>{version}</small></h1>\
         <p>{description}</p><p>The machine-readable document: <a href=\"openapi.json\">openapi.json</a>.</p>",
        title = escape(title),
        version = escape(version),
        description = inline(doc["info"]["description"].as_str().unwrap_or_default()),
    );
    for tag in doc["tags"].as_array().into_iter().flatten() {
        let name = tag["name"].as_str().unwrap_or_default();
        let description = inline(tag["description"].as_str().unwrap_or_default());
        let _ = write!(html, "<h2>{}</h2><p>{description}</p>", escape(name));
        for (path, item) in doc["paths"].as_object().into_iter().flatten() {
            for method in METHODS {
                let Some(operation) = item.get(method) else { continue };
                if operation["tags"].as_array().is_some_and(|tags| tags.iter().any(|tag| tag == name)) {
                    operation_html(&mut html, doc, method, path, operation);
                }
            }
        }
    }
    html.push_str("<h2>Schemas</h2>");
    for (name, schema) in doc["components"]["schemas"].as_object().into_iter().flatten() {
        let text = serde_json::to_string_pretty(schema).unwrap_or_default();
        let _ = write!(html, "<section id=\"schema-{name}\"><h3>{name}</h3><pre>{}</pre></section>", escape(&text));
    }
    html.push_str("</body></html>");
    html
}

fn operation_html(html: &mut String, doc: &Value, method: &str, path: &str, operation: &Value) {
    let _ = write!(
        html,
        "<section><h3><span class=\"m\">{method}</span> <code>{}</code></h3><p>{}</p>",
        escape(path),
        inline(operation["summary"].as_str().unwrap_or_default()),
    );
    if let Some(security) = operation["security"].as_array() {
        let alternatives: Vec<String> = security
            .iter()
            .filter_map(Value::as_object)
            .map(|requirement| requirement.keys().map(|name| escape(name)).collect::<Vec<_>>().join(" and "))
            .collect();
        let _ = write!(html, "<p>Credentials (once configured): {}.</p>", alternatives.join(" or "));
    }
    if let Some(parameters) = operation["parameters"].as_array() {
        html.push_str("<table><tr><th>parameter</th><th>in</th><th>type</th><th>description</th></tr>");
        for parameter in parameters {
            let required = if parameter["required"].as_bool() == Some(true) { " (required)" } else { "" };
            let _ = write!(
                html,
                "<tr><td><code>{}</code>{required}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(parameter["name"].as_str().unwrap_or_default()),
                escape(parameter["in"].as_str().unwrap_or_default()),
                schema_name(&parameter["schema"]),
                inline(parameter["description"].as_str().unwrap_or_default()),
            );
        }
        html.push_str("</table>");
    }
    if let Some(body) = operation["requestBody"]["content"].as_object() {
        for (content_type, content) in body {
            let _ = write!(html, "<p>Body ({}): {}</p>", escape(content_type), schema_name(&content["schema"]));
        }
    }
    html.push_str("<table><tr><th>status</th><th>meaning</th><th>body</th></tr>");
    for (status, response) in operation["responses"].as_object().into_iter().flatten() {
        let response = match response["$ref"].as_str() {
            Some(reference) => &doc["components"]["responses"][reference.rsplit('/').next().unwrap_or_default()],
            None => response,
        };
        let body = response["content"].as_object().and_then(|content| content.values().next());
        let body = body.map(|content| schema_name(&content["schema"])).unwrap_or_default();
        let description = inline(response["description"].as_str().unwrap_or_default());
        let _ = write!(html, "<tr><td>{}</td><td>{description}</td><td>{body}</td></tr>", escape(status));
    }
    html.push_str("</table></section>");
}

/// A short, linked name for a schema: `Task`, `array of LogLine`, `string (uuid)`.
fn schema_name(schema: &Value) -> String {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = escape(reference.rsplit('/').next().unwrap_or_default());
        return format!("<a href=\"#schema-{name}\">{name}</a>");
    }
    if let Some(alternatives) = schema["oneOf"].as_array().or_else(|| schema["anyOf"].as_array()) {
        return alternatives.iter().map(schema_name).collect::<Vec<_>>().join(" or ");
    }
    let kind = match &schema["type"] {
        Value::String(kind) => kind.clone(),
        Value::Array(kinds) => kinds.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" or "),
        _ => "any".to_owned(),
    };
    if kind == "array" {
        return format!("array of {}", schema_name(&schema["items"]));
    }
    match schema["format"].as_str() {
        Some(format) => format!("{} ({})", escape(&kind), escape(format)),
        None => escape(&kind),
    }
}

/// Escaped text with `code` spans.
fn inline(text: &str) -> String {
    let mut html = String::new();
    for (index, part) in escape(text).split('`').enumerate() {
        if index % 2 == 1 {
            let _ = write!(html, "<code>{part}</code>");
        } else {
            html.push_str(part);
        }
    }
    html
}

fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}
