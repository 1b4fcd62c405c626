//! A scripted Anthropic Messages API on 127.0.0.1 for end-to-end tests with the real Claude Code
//! CLI: each streaming `POST /v1/messages` takes the next scripted reply (tool calls, a closing
//! text, or an HTTP error) and answers it as server-sent events; every request is recorded.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

/// One tool call of a scripted assistant message.
#[derive(Debug, Clone)]
pub struct ToolCall {
    /// The tool's name as the CLI offers it (`Write`, `Bash`, ...).
    pub name: String,
    /// The tool's input object.
    pub input: Value,
}

/// What the model answers to one streaming request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// An assistant message calling these tools (`stop_reason: tool_use`).
    Tools(Vec<ToolCall>),
    /// An assistant message of plain text that ends the turn (`stop_reason: end_turn`).
    Text(String),
    /// An HTTP error with the API's error body (529 overloaded, 401 authentication, ...).
    Status(u16),
}

impl Reply {
    /// A `Write` call; `file_path` must be absolute (the CLI refuses relative paths).
    pub fn write(file_path: &std::path::Path, content: &str) -> ToolCall {
        assert!(file_path.is_absolute(), "Write needs an absolute path: {}", file_path.display());
        ToolCall { name: "Write".into(), input: json!({"file_path": file_path, "content": content}) }
    }

    /// A `Bash` call.
    pub fn bash(command: &str) -> ToolCall {
        ToolCall { name: "Bash".into(), input: json!({"command": command, "description": "Scripted step"}) }
    }
}

/// One HTTP request as the stub received it.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `POST`, `HEAD`, ...
    pub method: String,
    /// The path with its query (`/v1/messages?beta=true`).
    pub path: String,
    /// Header names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub body: String,
}

impl Request {
    /// The body parsed as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Whether this is a model turn: a streaming `POST /v1/messages`.
    pub fn is_turn(&self) -> bool {
        self.method == "POST" && route(&self.path) == "/v1/messages" && self.json()["stream"] == true
    }

    /// The text of every user message of the conversation (the prompt, tool results, hook
    /// feedback), joined; the CLI also sends `system` messages in the list, which are left out.
    pub fn user_text(&self) -> String {
        let v = self.json();
        let messages = v["messages"].as_array().cloned().unwrap_or_default();
        messages.iter().filter(|m| m["role"] == "user").map(message_text).collect::<Vec<_>>().join("\n")
    }

    /// The text of the conversation's last message (its text and tool-result parts, joined).
    pub fn last_message_text(&self) -> String {
        let v = self.json();
        let Some(last) = v["messages"].as_array().and_then(|m| m.last()) else { return String::new() };
        message_text(last)
    }
}

/// The text of one message: a string content, or its `text` and `tool_result` parts.
pub fn message_text(message: &Value) -> String {
    match &message["content"] {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .map(|p| match (&p["text"], &p["content"]) {
                (Value::String(t), _) => t.clone(),
                (_, Value::String(c)) => c.clone(),
                (_, Value::Array(inner)) => {
                    inner.iter().filter_map(|i| i["text"].as_str()).collect::<Vec<_>>().join("\n")
                }
                _ => String::new(),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
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

impl Stub {
    /// Starts a stub answering the replies in order, then `fallback` for every further turn.
    pub fn start(script: Vec<Reply>, fallback: Reply) -> Stub {
        let shared = Arc::new(Mutex::new(Shared { script: script.into(), fallback, requests: Vec::new(), turns: 0 }));
        let s = Arc::clone(&shared);
        let (addr, stop) = listen(move |conn| serve(conn, &s));
        Stub { addr, shared, stop }
    }

    /// `http://127.0.0.1:<port>`, for `ANTHROPIC_BASE_URL`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.lock().expect("stub lock").requests.clone()
    }

    /// The model turns (streaming `POST /v1/messages`) so far.
    pub fn turns(&self) -> Vec<Request> {
        self.requests().into_iter().filter(Request::is_turn).collect()
    }

    /// How many scripted replies are still unused.
    pub fn unused(&self) -> usize {
        self.shared.lock().expect("stub lock").script.len()
    }

    /// Whether any request body contains `needle`.
    pub fn saw(&self, needle: &str) -> bool {
        self.requests().iter().any(|r| r.body.contains(needle))
    }

    /// A summary of the requests for assertion messages: method, path and the last message.
    pub fn describe(&self) -> String {
        self.requests()
            .iter()
            .map(|r| {
                let last: String = r.last_message_text().chars().take(300).collect();
                format!("{} {} :: {}", r.method, r.path, last.replace('\n', "\\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

/// The path without its query.
fn route(path: &str) -> &str {
    path.split('?').next().unwrap_or(path)
}

/// Serves one connection: requests in sequence while the client keeps it alive.
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

/// Listens on a free port of 127.0.0.1 and hands each connection to `serve` on a thread of its
/// own, until the returned flag is set (the stubs set it when dropped).
pub fn listen(serve: impl Fn(TcpStream) + Send + Sync + 'static) -> (SocketAddr, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    let stop = Arc::new(AtomicBool::new(false));
    let (serve, st) = (Arc::new(serve), Arc::clone(&stop));
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            if st.load(Ordering::SeqCst) {
                break;
            }
            let Ok(conn) = conn else { continue };
            let serve = Arc::clone(&serve);
            std::thread::spawn(move || serve(conn));
        }
    });
    (addr, stop)
}

/// Reads one HTTP/1.1 request (Content-Length or chunked body); `None` at end of stream (also
/// used by the Responses stub).
pub fn read_request(reader: &mut impl BufRead) -> Option<Request> {
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if !line.trim().is_empty() {
            break;
        }
    }
    let mut words = line.split_whitespace();
    let method = words.next()?.to_owned();
    let path = words.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let get = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let mut body = Vec::new();
    if get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim().split(';').next()?.trim(), 16).ok()?;
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(n) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body = vec![0; n];
        reader.read_exact(&mut body).ok()?;
    }
    Some(Request { method, path, headers, body: String::from_utf8_lossy(&body).into_owned() })
}

/// Records the request and builds the whole response.
fn respond(req: &Request, shared: &Mutex<Shared>) -> Vec<u8> {
    let mut s = shared.lock().expect("stub lock");
    s.requests.push(req.clone());
    let body = req.json();
    let model = body["model"].as_str().unwrap_or("claude-stub").to_owned();
    match (req.method.as_str(), route(&req.path)) {
        ("HEAD", _) => http(200, "application/json", b"", true),
        ("POST", "/v1/messages/count_tokens") => {
            let tokens = req.body.len() / 4 + 1;
            http(200, "application/json", json!({"input_tokens": tokens}).to_string().as_bytes(), false)
        }
        ("POST", "/v1/messages") if body["stream"] == true => {
            s.turns += 1;
            let turn = s.turns;
            let reply = s.script.pop_front().unwrap_or_else(|| s.fallback.clone());
            match reply {
                Reply::Status(code) => error(code),
                Reply::Text(text) => http(200, "text/event-stream", &stream(turn, &model, &[], Some(&text)), false),
                Reply::Tools(calls) => http(200, "text/event-stream", &stream(turn, &model, &calls, None), false),
            }
        }
        // A non-streaming message (a title, a quota or connectivity check): a short text answer.
        ("POST", "/v1/messages") => {
            let message = json!({
                "id": "msg_stub_plain", "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": "Scripted"}],
                "stop_reason": "end_turn", "stop_sequence": null,
                "usage": {"input_tokens": 1, "output_tokens": 1}
            });
            http(200, "application/json", message.to_string().as_bytes(), false)
        }
        _ => http(200, "application/json", b"{}", false),
    }
}

/// The API's error response for `code`.
fn error(code: u16) -> Vec<u8> {
    let (kind, message) = match code {
        401 => ("authentication_error", "invalid x-api-key"),
        403 => ("permission_error", "forbidden"),
        429 => ("rate_limit_error", "Number of request tokens has exceeded your rate limit"),
        529 => ("overloaded_error", "Overloaded"),
        _ => ("api_error", "Internal server error"),
    };
    http(
        code,
        "application/json",
        json!({"type": "error", "error": {"type": kind, "message": message}}).to_string().as_bytes(),
        false,
    )
}

pub fn http(code: u16, content_type: &str, body: &[u8], head: bool) -> Vec<u8> {
    let reason = match code {
        200 => "OK",
        401 => "Unauthorized",
        403 => "Forbidden",
        429 => "Too Many Requests",
        529 => "Overloaded",
        _ => "Error",
    };
    let mut out = format!(
        "HTTP/1.1 {code} {reason}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nrequest-id: req_stub\r\nconnection: keep-alive\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head {
        out.extend_from_slice(body);
    }
    out
}

fn event(out: &mut String, data: &Value) {
    let name = data["type"].as_str().expect("event type");
    out.push_str(&format!("event: {name}\ndata: {data}\n\n"));
}

/// The server-sent events of one assistant message: text, then tool calls, then the stop.
fn stream(turn: u32, model: &str, calls: &[ToolCall], text: Option<&str>) -> Vec<u8> {
    let mut out = String::new();
    event(
        &mut out,
        &json!({"type": "message_start", "message": {
            "id": format!("msg_stub_{turn}"), "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 10, "output_tokens": 1}
        }}),
    );
    let mut index = 0;
    if let Some(text) = text {
        event(
            &mut out,
            &json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}),
        );
        event(
            &mut out,
            &json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}}),
        );
        event(&mut out, &json!({"type": "content_block_stop", "index": index}));
        index += 1;
    }
    for (k, call) in calls.iter().enumerate() {
        event(
            &mut out,
            &json!({"type": "content_block_start", "index": index, "content_block": {
                "type": "tool_use", "id": format!("toolu_stub_{turn}_{k}"), "name": call.name, "input": {}
            }}),
        );
        // The input arrives in two pieces, as a real stream splits it.
        let input = call.input.to_string();
        let cut = input.char_indices().nth(input.chars().count() / 2).map_or(0, |(i, _)| i);
        for piece in [&input[..cut], &input[cut..]] {
            event(
                &mut out,
                &json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": piece}}),
            );
        }
        event(&mut out, &json!({"type": "content_block_stop", "index": index}));
        index += 1;
    }
    let stop_reason = if calls.is_empty() { "end_turn" } else { "tool_use" };
    event(
        &mut out,
        &json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null}, "usage": {"output_tokens": 20}}),
    );
    event(&mut out, &json!({"type": "message_stop"}));
    out.into_bytes()
}
