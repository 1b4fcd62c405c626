//! A scripted OpenAI Responses API on 127.0.0.1 for end-to-end tests with the real Codex CLI:
//! each streaming `POST /v1/responses` takes the next scripted reply (shell commands through the
//! CLI's `exec_command` tool, a closing message, or an HTTP error) and answers it as server-sent
//! events; every request is recorded. HTTP is read and written as the Anthropic stub does.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

pub use super::anthropic_stub::Request;
use super::anthropic_stub::{http, listen, read_request};

/// What the model answers to one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Calls of the CLI's shell tool (`exec_command`), one per command, run in order.
    Commands(Vec<String>),
    /// An assistant message that ends the turn.
    Text(String),
    /// An HTTP error with the API's error body (500, 400, 401, ...).
    Status(u16),
}

struct Shared {
    script: VecDeque<Reply>,
    fallback: Reply,
    requests: Vec<Request>,
    turns: u32,
}

/// The running stub; it stops accepting when dropped.
pub struct Stub {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
}

impl Request {
    /// Whether this is a model turn: a `POST /v1/responses`.
    pub fn is_response(&self) -> bool {
        self.method == "POST" && self.path.split('?').next() == Some("/v1/responses")
    }

    /// The text of every `input` item (messages and tool outputs), joined.
    pub fn input_text(&self) -> String {
        let v = self.json();
        let items = v["input"].as_array().cloned().unwrap_or_default();
        items.iter().map(item_text).collect::<Vec<_>>().join("\n")
    }

    /// The `function_call_output` texts of the input, in order.
    pub fn tool_outputs(&self) -> Vec<String> {
        let v = self.json();
        let items = v["input"].as_array().cloned().unwrap_or_default();
        items.iter().filter(|i| i["type"] == "function_call_output").map(item_text).collect()
    }
}

/// The text of one input item: a message's text parts, or a tool call's output.
fn item_text(item: &Value) -> String {
    match (&item["content"], &item["output"]) {
        (Value::String(s), _) | (_, Value::String(s)) => s.clone(),
        (Value::Array(parts), _) => parts.iter().filter_map(|p| p["text"].as_str()).collect::<Vec<_>>().join("\n"),
        (_, Value::Array(parts)) => parts.iter().filter_map(|p| p["text"].as_str()).collect::<Vec<_>>().join("\n"),
        _ => String::new(),
    }
}

impl Stub {
    /// Starts a stub answering the replies in order, then `fallback` for every further turn.
    pub fn start(script: Vec<Reply>, fallback: Reply) -> Stub {
        let shared = Arc::new(Mutex::new(Shared { script: script.into(), fallback, requests: Vec::new(), turns: 0 }));
        let s = Arc::clone(&shared);
        let (addr, stop) = listen(move |conn| serve(conn, &s));
        Stub { addr, shared, stop }
    }

    /// `http://127.0.0.1:<port>/v1`, the provider's `base_url` (the CLI appends `/responses`).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.lock().expect("stub lock").requests.clone()
    }

    /// The model turns so far.
    pub fn turns(&self) -> Vec<Request> {
        self.requests().into_iter().filter(Request::is_response).collect()
    }

    /// How many scripted replies are still unused.
    pub fn unused(&self) -> usize {
        self.shared.lock().expect("stub lock").script.len()
    }

    /// A summary of the requests for assertion messages: method, path, the last input item.
    pub fn describe(&self) -> String {
        self.requests()
            .iter()
            .map(|r| {
                let v = r.json();
                let last = v["input"].as_array().and_then(|i| i.last()).map(item_text).unwrap_or_default();
                let last: String = last.chars().take(300).collect();
                format!("{} {} :: {}", r.method, r.path, last.replace('\n', "\\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

fn serve(conn: TcpStream, shared: &Mutex<Shared>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(120)));
    let Ok(write_half) = conn.try_clone() else { return };
    let mut reader = BufReader::new(conn);
    let mut writer = write_half;
    while let Some(req) = read_request(&mut reader) {
        let close = req.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let response = respond(&req, shared);
        if writer.write_all(&response).and_then(|()| writer.flush()).is_err() || close {
            return;
        }
    }
}

fn respond(req: &Request, shared: &Mutex<Shared>) -> Vec<u8> {
    let mut s = shared.lock().expect("stub lock");
    s.requests.push(req.clone());
    if !req.is_response() {
        return http(404, "application/json", br#"{"error": {"message": "not scripted"}}"#, req.method == "HEAD");
    }
    s.turns += 1;
    let turn = s.turns;
    let reply = s.script.pop_front().unwrap_or_else(|| s.fallback.clone());
    match reply {
        Reply::Status(code) => error(code),
        Reply::Text(text) => http(200, "text/event-stream", &stream(turn, &[], Some(&text)), false),
        Reply::Commands(commands) => http(200, "text/event-stream", &stream(turn, &commands, None), false),
    }
}

/// The API's error response for `code`.
fn error(code: u16) -> Vec<u8> {
    let (kind, message) = match code {
        400 => ("invalid_request_error", "Scripted bad request: the model rejected the input"),
        401 => ("invalid_api_key", "Incorrect API key provided"),
        429 => ("rate_limit_exceeded", "Rate limit reached for requests"),
        _ => ("server_error", "The server had an error while processing your request"),
    };
    let body = json!({"error": {"message": message, "type": kind, "code": kind, "param": null}});
    http(code, "application/json", body.to_string().as_bytes(), false)
}

fn event(out: &mut String, data: &Value) {
    let name = data["type"].as_str().expect("event type");
    out.push_str(&format!("event: {name}\ndata: {data}\n\n"));
}

/// The server-sent events of one response: the message text or the tool calls, then
/// `response.completed` with its usage.
fn stream(turn: u32, commands: &[String], text: Option<&str>) -> Vec<u8> {
    let id = format!("resp_stub_{turn}");
    let mut out = String::new();
    event(&mut out, &json!({"type": "response.created", "response": {"id": id}}));
    if let Some(text) = text {
        let item = json!({
            "type": "message", "role": "assistant", "id": format!("msg_stub_{turn}"),
            "content": [{"type": "output_text", "text": text}]
        });
        event(&mut out, &json!({"type": "response.output_item.added", "output_index": 0, "item": item}));
        event(
            &mut out,
            &json!({"type": "response.output_text.delta", "item_id": format!("msg_stub_{turn}"), "output_index": 0, "content_index": 0, "delta": text}),
        );
        event(&mut out, &json!({"type": "response.output_item.done", "output_index": 0, "item": item}));
    }
    for (k, command) in commands.iter().enumerate() {
        let item = json!({
            "type": "function_call", "id": format!("fc_stub_{turn}_{k}"), "call_id": format!("call_stub_{turn}_{k}"),
            "name": "exec_command", "arguments": json!({"cmd": command, "yield_time_ms": 10000}).to_string()
        });
        event(&mut out, &json!({"type": "response.output_item.done", "output_index": k, "item": item}));
    }
    event(
        &mut out,
        &json!({"type": "response.completed", "response": {"id": id, "usage": {
            "input_tokens": 120, "input_tokens_details": {"cached_tokens": 20},
            "output_tokens": 30, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 150
        }}}),
    );
    out.into_bytes()
}
