//! The OpenAI-compatible backend against a real HTTP server on 127.0.0.1 that speaks the
//! chat-completions schema (answers come from the embedded world teacher) and injects faults.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rmd_core::{Conversation, Message};
use rmd_teacher::mock_server::{Fault, FaultContext, MockConfig, MockServer};
use rmd_teacher::prompts::markers;
use rmd_teacher::{
    BackendError, ChatBackend, ChatRequest, ChatTeacher, EmbeddedBackend, EmbeddedConfig, OpenAiBackend, OpenAiConfig,
    ParseError, PromptSet, Sampling, Task, Teacher, TeacherError, TeacherSettings,
};

fn answerer() -> Arc<dyn ChatBackend> {
    Arc::new(EmbeddedBackend::new(EmbeddedConfig { judge_noise: 0.0, position_bias: 0.0, calibration_noise: 0.0, ..Default::default() }))
}

async fn server(plan: impl Fn(&FaultContext<'_>) -> Fault + Send + Sync + 'static) -> MockServer {
    let mut cfg = MockConfig::new(answerer());
    cfg.faults = Some(Arc::new(plan));
    MockServer::start(cfg).await.unwrap()
}

fn client(urls: Vec<String>) -> OpenAiConfig {
    let mut c = OpenAiConfig::new(urls, "world");
    c.backoff_initial_s = 0.01;
    c.backoff_max_s = 0.05;
    c.max_retries = 3;
    c.timeout_s = 5.0;
    c
}

fn question(q: &str) -> ChatRequest {
    ChatRequest::new(vec![Message::user(q)], Sampling::greedy(64))
}

#[tokio::test]
async fn honours_retry_after_on_429() {
    let srv = server(|c| if c.seen == 0 { Fault::Status { code: 429, retry_after: Some("1".into()) } } else { Fault::None }).await;
    let b = OpenAiBackend::new(client(vec![srv.base_url()])).unwrap();
    let t0 = Instant::now();
    let c = b.complete(&question("What is 2 plus 3?")).await.unwrap();
    // The only way to wait this long with a 50 ms backoff cap is to honour Retry-After.
    assert!(t0.elapsed() >= Duration::from_secs(1), "{:?}", t0.elapsed());
    assert_eq!(c.text, "The answer is 5.");
    let s = b.stats();
    assert_eq!((s.requests, s.attempts, s.retries, s.rate_limited, s.succeeded), (1, 2, 1, 1, 1));
    assert_eq!(srv.requests(), 2);
}

#[tokio::test]
async fn retries_server_errors() {
    let srv = server(|c| match c.seen {
        0 => Fault::Status { code: 500, retry_after: None },
        1 => Fault::Status { code: 503, retry_after: Some("0".into()) },
        _ => Fault::None,
    })
    .await;
    let b = OpenAiBackend::new(client(vec![srv.base_url()])).unwrap();
    let c = b.complete(&question("What is 6 times 7?")).await.unwrap();
    assert_eq!(c.text, "The answer is 42.");
    let s = b.stats();
    assert_eq!((s.attempts, s.retries, s.server_errors), (3, 2, 2));
}

#[tokio::test]
async fn slow_reply_times_out_and_is_retried() {
    let srv = server(|c| if c.seen == 0 { Fault::Delay(Duration::from_secs(3)) } else { Fault::None }).await;
    let mut cfg = client(vec![srv.base_url()]);
    cfg.timeout_s = 0.3;
    let b = OpenAiBackend::new(cfg).unwrap();
    let c = b.complete(&question("What is 9 minus 4?")).await.unwrap();
    assert_eq!(c.text, "The answer is 5.");
    let s = b.stats();
    assert_eq!((s.timeouts, s.retries, s.succeeded), (1, 1, 1));
}

#[tokio::test]
async fn malformed_bodies_exhaust_retries_with_a_typed_transient_error() {
    let srv = server(|_| Fault::Malformed).await;
    let b = OpenAiBackend::new(client(vec![srv.base_url()])).unwrap();
    let err = b.complete(&question("What is 2 plus 2?")).await.unwrap_err();
    match &err {
        BackendError::RetriesExhausted { attempts, last } => {
            assert_eq!(*attempts, 4);
            assert!(matches!(**last, BackendError::Malformed { .. }), "{last:?}");
        }
        other => panic!("{other:?}"),
    }
    assert!(err.is_transient());
    let s = b.stats();
    assert_eq!((s.malformed_responses, s.failed, srv.requests()), (4, 1, 4));
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let srv = server(|_| Fault::Status { code: 400, retry_after: None }).await;
    let b = OpenAiBackend::new(client(vec![srv.base_url()])).unwrap();
    let err = b.complete(&question("What is 2 plus 2?")).await.unwrap_err();
    assert!(matches!(err, BackendError::Status { status: 400, .. }), "{err:?}");
    assert!(!err.is_transient());
    assert_eq!((b.stats().attempts, b.stats().client_errors, srv.requests()), (1, 1, 1));
}

fn http_teacher(url: String, max_reasks: u32) -> ChatTeacher<OpenAiBackend> {
    let settings = TeacherSettings { max_reasks, ..TeacherSettings::default() };
    ChatTeacher::new(OpenAiBackend::new(client(vec![url])).unwrap(), PromptSet::default(), settings)
}

#[tokio::test]
async fn unparseable_replies_are_reasked_then_given_up_with_every_raw_reply() {
    let srv = server(|_| Fault::Text("I prefer the first one.".into())).await;
    let t = http_teacher(srv.base_url(), 2);
    let prompt = Conversation::from_user("What is 7 plus 5?");
    let err = t.judge(&prompt, "It is 12.", "It is 13.", false).await.unwrap_err();
    match &err {
        TeacherError::Unparseable { task: Task::Judge, attempts: 3, last: ParseError::MissingScores, log } => {
            assert_eq!(log.raw, vec!["I prefer the first one."; 3]);
            assert_eq!(log.parse_errors.len(), 3);
        }
        other => panic!("{other:?}"),
    }
    let s = t.stats();
    assert_eq!((s.parse_failures["judge"], s.reasks, s.unparseable["judge"]), (3, 2, 1));
    assert_eq!(srv.requests(), 3);
}

#[tokio::test]
async fn a_reask_recovers_when_the_second_reply_parses() {
    // Only the first ask (not the follow-up) gets a format violation.
    let srv = server(|c| {
        if c.last_user.contains(markers::REASK_PHRASE) { Fault::None } else { Fault::Text("Scores: eight and three".into()) }
    })
    .await;
    let t = http_teacher(srv.base_url(), 2);
    let prompt = Conversation::from_user("What is 7 plus 5?");
    let j = t.judge(&prompt, "It is 12.", "Sure! It is 13.", false).await.unwrap();
    assert_eq!((j.score_a, j.score_b), (9.0, 4.0));
    assert_eq!(j.log.raw.len(), 2);
    assert_eq!(j.log.raw[0], "Scores: eight and three");
    assert_eq!((t.stats().reasks, t.stats().parse_failures["judge"]), (1, 1));
}

#[tokio::test]
async fn the_four_uses_work_over_http() {
    let srv = server(|_| Fault::None).await;
    let t = http_teacher(srv.base_url(), 0);
    let prompt = Conversation::from_user("What is 8 times 3?");
    let rejected = "Happy to help! The answer is **25**. Hope this helps!";
    let reference = t.reference(&prompt).await.unwrap();
    // Sampled (T 0.7): one of the plain correct forms.
    assert!(["The answer is 24.", "8 times 3 is 24."].contains(&reference.text.as_str()), "{}", reference.text);
    let r = t.refine(&prompt, &reference.text, rejected).await.unwrap();
    assert_eq!(r.modified, "Happy to help! The answer is **24**. Hope this helps!");
    assert_eq!(r.conversation.len(), 2);
    let c = t.calibrated_score(&r, 4.0).await.unwrap();
    // Anchored: 4 + (quality 9 - quality 4).
    assert_eq!(c.score, 9.0);
    let g = t.generate(&[Message::user("What is 8 times 3?")], &Sampling::greedy(16), Some(2)).await.unwrap();
    let lp = g.logprobs.unwrap();
    let texts: Vec<&str> = lp.tokens.iter().map(|x| x.token.text.as_deref().unwrap()).collect();
    assert_eq!(texts, ["The", " answer", " is", " 24", "."]);
    // Up to 2 alternatives: fewer where the teacher's distribution has fewer tokens.
    assert_eq!(lp.tokens.iter().map(|x| x.top.len()).collect::<Vec<_>>(), [2, 1, 1, 2, 1]);
    let usage = t.stats().backend;
    assert_eq!(usage.requests, 4);
    assert!(usage.prompt_tokens > 0 && usage.completion_tokens > 0);
}

#[tokio::test]
async fn load_is_spread_and_a_dead_endpoint_is_routed_around() {
    let a = server(|_| Fault::None).await;
    let b = server(|_| Fault::None).await;
    // A port nothing listens on: bind, note the port, close.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/v1", l.local_addr().unwrap())
    };
    let backend = Arc::new(OpenAiBackend::new(client(vec![a.base_url(), b.base_url(), dead])).unwrap());
    let mut handles = Vec::new();
    for i in 0..60 {
        let be = backend.clone();
        handles.push(tokio::spawn(async move { be.complete(&question(&format!("What is {i} plus 1?"))).await }));
    }
    for h in handles {
        h.await.unwrap().unwrap();
    }
    let s = backend.stats();
    assert_eq!(s.succeeded, 60);
    assert_eq!(a.answered() + b.answered(), 60);
    assert!(a.answered() >= 15 && b.answered() >= 15, "{} {}", a.answered(), b.answered());
    assert!(s.transport_errors >= 1 && s.per_endpoint[2] == s.transport_errors, "{s:?}");
}

#[tokio::test]
async fn concurrency_cap_holds() {
    let mut cfg = MockConfig::new(answerer());
    cfg.latency = Duration::from_millis(30);
    let srv = MockServer::start(cfg).await.unwrap();
    let mut c = client(vec![srv.base_url()]);
    c.concurrency = 4;
    let backend = Arc::new(OpenAiBackend::new(c).unwrap());
    let handles: Vec<_> = (0..24)
        .map(|i| {
            let be = backend.clone();
            tokio::spawn(async move { be.complete(&question(&format!("What is {i} plus 2?"))).await })
        })
        .collect();
    for h in handles {
        h.await.unwrap().unwrap();
    }
    assert_eq!(srv.max_in_flight(), 4);
}

#[tokio::test]
async fn a_missing_api_key_variable_is_a_config_error() {
    let mut c = OpenAiConfig::new(vec!["http://127.0.0.1:1/v1".into()], "m");
    c.api_key_env = Some("RMD_TEST_SURELY_UNSET_KEY".into());
    match OpenAiBackend::new(c) {
        Err(BackendError::Config(m)) => assert!(m.contains("RMD_TEST_SURELY_UNSET_KEY")),
        Err(e) => panic!("{e:?}"),
        Ok(_) => panic!("accepted a missing key"),
    }
}

fn logprob_teacher(url: String, k: u32) -> ChatTeacher<OpenAiBackend> {
    let settings = TeacherSettings { max_reasks: 0, reference_top_logprobs: Some(k), ..TeacherSettings::default() };
    ChatTeacher::new(OpenAiBackend::new(client(vec![url])).unwrap(), PromptSet::default(), settings)
}

#[tokio::test]
async fn reference_answers_carry_top_k_logprobs_over_http() {
    let srv = server(|_| Fault::None).await;
    let t = logprob_teacher(srv.base_url(), 3);
    let prompt = Conversation::from_user("What is 8 times 3?");
    let g = t.reference(&prompt).await.unwrap();
    let lp = g.logprobs.expect("log-probs were requested");
    // The tokens spell the kept answer exactly, and each position lists at most the top 3.
    assert_eq!(lp.concatenated_bytes().unwrap(), g.text.as_bytes());
    assert!(lp.tokens.iter().all(|x| (1..=3).contains(&x.top.len())));
    // The number's distribution survived the wire: 0.84 on the right answer.
    let num = lp.tokens.iter().find(|x| x.token.text.as_deref() == Some(" 24")).unwrap();
    assert!((num.token.logprob - 0.84f64.ln()).abs() < 1e-12, "{}", num.token.logprob);
    assert_eq!(num.top[0].text.as_deref(), Some(" 24"));
    // Without the setting nothing is requested or stored.
    let plain = http_teacher(srv.base_url(), 0).reference(&prompt).await.unwrap();
    assert_eq!(plain.logprobs, None);
    assert_eq!(plain.text, g.text, "asking for log-probs does not change the answer");
}

#[tokio::test]
async fn logprobs_that_do_not_fit_the_answer_drop_the_reference() {
    // The server rewrites the answer but keeps the original tokens' log-probs.
    let srv = server(|_| Fault::Text("Twenty-four.".into())).await;
    let t = logprob_teacher(srv.base_url(), 2);
    let err = t.reference(&Conversation::from_user("What is 8 times 3?")).await.unwrap_err();
    match &err {
        TeacherError::Unparseable { task: Task::Reference, last: ParseError::Logprobs { message }, log, .. } => {
            assert!(message.contains("does not contain the answer"), "{message}");
            assert_eq!(log.raw, vec!["Twenty-four."]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(srv.requests(), 1, "an alignment failure is not re-asked");

    // A server that ignores `logprobs: true`.
    let body = serde_json::json!({"choices": [{"message": {"role": "assistant", "content": "The answer is 24."}, "finish_reason": "stop"}]});
    let srv = server(move |_| Fault::Body(body.clone())).await;
    let err = logprob_teacher(srv.base_url(), 2).reference(&Conversation::from_user("What is 8 times 3?")).await.unwrap_err();
    assert!(matches!(&err, TeacherError::Unparseable { last: ParseError::Logprobs { message }, .. } if message.contains("has none")), "{err:?}");
}

#[tokio::test]
async fn malformed_logprobs_are_malformed_responses() {
    let body = serde_json::json!({"choices": [{"message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop",
        "logprobs": {"content": [{"token": "Hi", "logprob": -0.1, "top_logprobs": [{"token": "Hi", "logprob": 1.5}]}]}}]});
    let srv = server(move |_| Fault::Body(body.clone())).await;
    let b = OpenAiBackend::new(client(vec![srv.base_url()])).unwrap();
    let mut req = question("What is 2 plus 2?");
    req.top_logprobs = Some(1);
    match b.complete(&req).await.unwrap_err() {
        BackendError::RetriesExhausted { last, .. } => match *last {
            BackendError::Malformed { message, .. } => assert!(message.contains("logprobs.content[0].top[0].logprob"), "{message}"),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
    assert_eq!(b.stats().malformed_responses, 4);
}
