//! An in-process chat-completions server on 127.0.0.1 for tests and benches (feature
//! `mock-server`). It answers through any [`ChatBackend`] (normally the embedded world
//! teacher), adds a fixed latency, and injects faults chosen per request by a plan:
//! error statuses with `Retry-After`, slow replies, malformed bodies, or arbitrary text.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use rmd_core::{Message, Role};
use serde_json::{json, Value};

use crate::backend::ChatBackend;
use crate::canonical::sha256_hex;
use crate::request::{ChatRequest, Completion, Sampling, TokenLogprob};

/// What the server does with one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Answer normally.
    None,
    /// Reply with this status (and `Retry-After` if given) instead of answering.
    Status { code: u16, retry_after: Option<String> },
    /// Wait this long before answering normally (to trip client timeouts).
    Delay(Duration),
    /// 200 with a body that is not valid JSON.
    Malformed,
    /// 200 with this assistant text instead of the real answer (the rest of the
    /// completion, log-probs included, is the real answer's).
    Text(String),
    /// 200 with this JSON body verbatim.
    Body(Value),
}

/// What a fault plan sees about a request.
pub struct FaultContext<'a> {
    /// 0-based arrival index over all requests.
    pub index: u64,
    /// How many times this exact body arrived before (0 on the first try).
    pub seen: u64,
    pub body: &'a Value,
    /// The last user message.
    pub last_user: &'a str,
}

pub type FaultPlan = Arc<dyn Fn(&FaultContext<'_>) -> Fault + Send + Sync>;

#[derive(Clone)]
pub struct MockConfig {
    pub answerer: Arc<dyn ChatBackend>,
    /// Added to every request before it is answered.
    pub latency: Duration,
    pub faults: Option<FaultPlan>,
}

impl MockConfig {
    pub fn new(answerer: Arc<dyn ChatBackend>) -> Self {
        Self { answerer, latency: Duration::ZERO, faults: None }
    }
}

struct ServerState {
    cfg: MockConfig,
    requests: AtomicU64,
    answered: AtomicU64,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    busy_ns: AtomicU64,
    seen: Mutex<HashMap<String, u64>>,
}

pub struct MockServer {
    addr: SocketAddr,
    state: Arc<ServerState>,
    task: tokio::task::JoinHandle<()>,
}

impl MockServer {
    /// Binds 127.0.0.1 on a free port and serves until dropped.
    pub async fn start(cfg: MockConfig) -> std::io::Result<Self> {
        let state = Arc::new(ServerState {
            cfg,
            requests: AtomicU64::new(0),
            answered: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            max_in_flight: AtomicU64::new(0),
            busy_ns: AtomicU64::new(0),
            seen: Mutex::new(HashMap::new()),
        });
        let app = Router::new().route("/v1/chat/completions", post(handle)).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "mock server stopped");
            }
        });
        Ok(Self { addr, state, task })
    }

    /// `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Requests received, faulty ones included.
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::Relaxed)
    }

    /// Requests answered with a real completion.
    pub fn answered(&self) -> u64 {
        self.state.answered.load(Ordering::Relaxed)
    }

    /// Total time spent inside the handler over all requests (latency, faults, answering).
    /// Divided by `requests()`, the server's mean service time: the real latency a client saw
    /// minus network and client overhead (timer rounding makes it exceed `latency` slightly).
    pub fn busy_time(&self) -> Duration {
        Duration::from_nanos(self.state.busy_ns.load(Ordering::Relaxed))
    }

    /// The most requests that were being handled at the same time.
    pub fn max_in_flight(&self) -> u64 {
        self.state.max_in_flight.load(Ordering::Relaxed)
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads a chat-completions body back into a [`ChatRequest`].
pub fn request_from_body(body: &Value) -> Result<ChatRequest, String> {
    let messages = body["messages"]
        .as_array()
        .ok_or("`messages` is not an array")?
        .iter()
        .map(|m| {
            let role = m["role"].as_str().and_then(Role::parse).ok_or("bad role")?;
            let content = m["content"].as_str().ok_or("content is not a string")?;
            Ok(Message::new(role, content))
        })
        .collect::<Result<Vec<_>, &str>>()?;
    let f = |k: &str| body.get(k).and_then(Value::as_f64);
    let sampling = Sampling {
        temperature: f("temperature"),
        top_p: f("top_p"),
        top_k: body.get("top_k").and_then(Value::as_i64),
        min_p: f("min_p"),
        max_tokens: body
            .get("max_tokens")
            .or(body.get("max_completion_tokens"))
            .and_then(Value::as_u64)
            .map(|x| x as u32),
        seed: body.get("seed").and_then(Value::as_u64),
        chat_template_kwargs: body.get("chat_template_kwargs").and_then(Value::as_object).cloned(),
        ..Sampling::default()
    };
    let top_logprobs = match body.get("logprobs").and_then(Value::as_bool) {
        Some(true) => Some(body.get("top_logprobs").and_then(Value::as_u64).unwrap_or(0) as u32),
        _ => None,
    };
    Ok(ChatRequest { messages, sampling, top_logprobs })
}

/// A completion in the chat-completions response schema.
pub fn completion_body(c: &Completion, index: u64) -> Value {
    // OpenAI's shape: `token` (vLLM's `token_id:<id>` when only the id is known), `logprob`,
    // `bytes`, and per generated token a `top_logprobs` list.
    let wire = |t: &TokenLogprob| {
        let token = match (&t.text, t.id, &t.bytes) {
            (Some(x), _, _) => x.clone(),
            (None, Some(id), _) => format!("token_id:{id}"),
            (None, None, b) => String::from_utf8_lossy(b.as_deref().unwrap_or_default()).into_owned(),
        };
        json!({"token": token, "logprob": t.logprob, "bytes": t.token_bytes().map(|b| b.to_vec())})
    };
    let logprobs = c.logprobs.as_ref().map(|lp| {
        let content: Vec<Value> = lp
            .tokens
            .iter()
            .map(|g| {
                let mut v = wire(&g.token);
                v["top_logprobs"] = Value::Array(g.top.iter().map(wire).collect());
                v
            })
            .collect();
        json!({ "content": content })
    });
    json!({
        "id": format!("mock-{index}"),
        "object": "chat.completion",
        "model": c.model.clone().unwrap_or_else(|| "mock".into()),
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": c.text },
            "finish_reason": c.finish_reason.clone().unwrap_or_else(|| "stop".into()),
            "logprobs": logprobs,
        }],
        "usage": {
            "prompt_tokens": c.usage.prompt_tokens,
            "completion_tokens": c.usage.completion_tokens,
            "total_tokens": c.usage.prompt_tokens + c.usage.completion_tokens,
        }
    })
}

async fn handle(State(state): State<Arc<ServerState>>, body: Bytes) -> Response {
    // A guard, because a client that times out makes the server drop this future.
    struct InFlight<'a>(&'a ServerState, std::time::Instant);
    impl Drop for InFlight<'_> {
        fn drop(&mut self) {
            self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
            self.0.busy_ns.fetch_add(self.1.elapsed().as_nanos() as u64, Ordering::Relaxed);
        }
    }
    let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let _guard = InFlight(&state, std::time::Instant::now());
    respond(&state, body).await
}

async fn respond(state: &Arc<ServerState>, body: Bytes) -> Response {
    // The latency is measured from arrival and the answer is computed inside it, so every
    // request takes `latency` (plus timer rounding), like a server with a fixed service time.
    let deadline = tokio::time::Instant::now() + state.cfg.latency;
    let index = state.requests.fetch_add(1, Ordering::Relaxed);
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("invalid JSON: {e}")).into_response(),
    };
    let request = match request_from_body(&value) {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
    };
    let seen = {
        let mut map = state.seen.lock().expect("seen lock");
        let n = map.entry(sha256_hex(&body)).or_insert(0);
        *n += 1;
        *n - 1
    };
    let last_user = request.messages.iter().rev().find(|m| m.role == Role::User).map(|m| m.content.as_str()).unwrap_or("");
    let fault = match &state.cfg.faults {
        Some(plan) => plan(&FaultContext { index, seen, body: &value, last_user }),
        None => Fault::None,
    };
    let answer = |text_override: Option<String>| async {
        match state.cfg.answerer.complete(&request).await {
            Ok(mut c) => {
                if let Some(t) = text_override {
                    c.text = t;
                }
                state.answered.fetch_add(1, Ordering::Relaxed);
                axum::Json(completion_body(&c, index)).into_response()
            }
            Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        }
    };
    let response = match fault {
        Fault::None => answer(None).await,
        Fault::Delay(d) => {
            tokio::time::sleep_until(deadline + d).await;
            answer(None).await
        }
        Fault::Text(t) => answer(Some(t)).await,
        Fault::Body(v) => axum::Json(v).into_response(),
        Fault::Malformed => {
            (StatusCode::OK, [("content-type", "application/json")], "{\"choices\": [{\"message\": ").into_response()
        }
        Fault::Status { code, retry_after } => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut resp = (status, json!({"error": {"message": "injected fault", "code": code}}).to_string()).into_response();
            if let Some(ra) = retry_after {
                if let Ok(v) = HeaderValue::from_str(&ra) {
                    resp.headers_mut().insert("retry-after", v);
                }
            }
            resp
        }
    };
    tokio::time::sleep_until(deadline).await;
    response
}
