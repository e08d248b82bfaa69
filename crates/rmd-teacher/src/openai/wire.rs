//! The OpenAI chat-completions wire format: request bodies and response parsing.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::request::{ChatRequest, Completion, GeneratedToken, TeacherLogprobs, TokenLogprob, Usage};

/// Builds the JSON body. `max_tokens_field` is `max_tokens` for most servers and
/// `max_completion_tokens` for OpenAI's newer models.
pub fn request_body(model: &str, request: &ChatRequest, max_tokens_field: &str) -> Value {
    let s = &request.sampling;
    let mut body = Map::new();
    body.insert("model".into(), model.into());
    let messages: Vec<Value> = request
        .messages
        .iter()
        .map(|m| serde_json::json!({ "role": m.role.as_str(), "content": m.content }))
        .collect();
    body.insert("messages".into(), Value::Array(messages));
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            body.insert(k.into(), v);
        }
    };
    put("temperature", s.temperature.map(Value::from));
    put("top_p", s.top_p.map(Value::from));
    put("top_k", s.top_k.map(Value::from));
    put("min_p", s.min_p.map(Value::from));
    put(max_tokens_field, s.max_tokens.map(Value::from));
    put("seed", s.seed.map(Value::from));
    put("stop", (!s.stop.is_empty()).then(|| Value::from(s.stop.clone())));
    put("presence_penalty", s.presence_penalty.map(Value::from));
    put("frequency_penalty", s.frequency_penalty.map(Value::from));
    put("repetition_penalty", s.repetition_penalty.map(Value::from));
    put("chat_template_kwargs", s.chat_template_kwargs.clone().map(Value::Object));
    if let Some(k) = request.top_logprobs {
        put("logprobs", Some(Value::Bool(true)));
        put("top_logprobs", Some(Value::from(k)));
    }
    body.insert("n".into(), 1.into());
    body.insert("stream".into(), false.into());
    for (k, v) in &s.extra {
        body.insert(k.clone(), v.clone());
    }
    Value::Object(body)
}

#[derive(Deserialize)]
struct WireResponse {
    #[serde(default)]
    model: Option<String>,
    choices: Vec<WireChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireChoice {
    message: WireMessage,
    #[serde(default)]
    finish_reason: Option<String>,
    #[serde(default)]
    logprobs: Option<WireLogprobs>,
}

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    reasoning_content: Option<String>,
    #[serde(default)]
    reasoning: Option<String>,
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

#[derive(Deserialize)]
struct WireLogprobs {
    #[serde(default)]
    content: Option<Vec<WireToken>>,
}

/// One entry of `logprobs.content[]` (and, without `top_logprobs`, of its `top_logprobs[]`).
#[derive(Deserialize)]
struct WireToken {
    token: String,
    logprob: f64,
    #[serde(default)]
    bytes: Option<Vec<u8>>,
    #[serde(default)]
    top_logprobs: Option<Vec<WireToken>>,
}

impl WireToken {
    /// vLLM with `return_tokens_as_token_ids: true` reports tokens as `token_id:<id>`: the
    /// id is then the token's identity and its text is unknown. Otherwise the text is the
    /// token, and `bytes` is kept only when the text cannot represent them (a token that
    /// ends inside a multi-byte character comes back with a replacement character).
    fn convert(&self) -> TokenLogprob {
        if let Some(id) = self.token.strip_prefix("token_id:").and_then(|d| d.parse::<u32>().ok()) {
            return TokenLogprob::id(id, self.logprob);
        }
        let bytes = self.bytes.clone().filter(|b| b.as_slice() != self.token.as_bytes());
        TokenLogprob { id: None, text: Some(self.token.clone()), bytes, logprob: self.logprob }
    }
}

/// `choices[0].logprobs.content` as [`TeacherLogprobs`], each entry checked.
fn convert_logprobs(tokens: Vec<WireToken>) -> Result<TeacherLogprobs, String> {
    let lp = TeacherLogprobs::new(
        tokens
            .iter()
            .map(|t| GeneratedToken {
                token: t.convert(),
                top: t.top_logprobs.iter().flatten().map(WireToken::convert).collect(),
            })
            .collect(),
    );
    // An empty answer has no tokens; the task parser rejects the answer itself.
    if !lp.is_empty() {
        lp.validate().map_err(|e| format!("logprobs.content{}: {}", e.path, e.message))?;
    }
    Ok(lp)
}

/// Parses a 200 body. Errors are messages for [`crate::BackendError::Malformed`].
pub fn parse_response(bytes: &[u8]) -> Result<Completion, String> {
    let wire: WireResponse = serde_json::from_slice(bytes).map_err(|e| {
        let head: String = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned();
        format!("{e}; body starts with {head:?}")
    })?;
    let choice = wire.choices.into_iter().next().ok_or("`choices` is empty")?;
    let reasoning = choice.message.reasoning_content.or(choice.message.reasoning);
    let content = match choice.message.content {
        Some(c) => c,
        // A thinking model that spent every token on reasoning returns null content; that
        // is a real (if useless) answer, which the task parser will reject.
        None if reasoning.is_some() => String::new(),
        None => return Err("the message has no `content`".into()),
    };
    let usage = wire
        .usage
        .map(|u| Usage { prompt_tokens: u.prompt_tokens, completion_tokens: u.completion_tokens })
        .unwrap_or_default();
    let logprobs = choice.logprobs.and_then(|l| l.content).map(convert_logprobs).transpose()?;
    Ok(Completion {
        text: content,
        reasoning,
        finish_reason: choice.finish_reason,
        usage,
        logprobs,
        model: wire.model,
        cached: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Sampling;
    use rmd_core::Message;
    use serde_json::json;

    #[test]
    fn body_carries_sampling_extras_and_logprobs() {
        let mut kw = Map::new();
        kw.insert("enable_thinking".into(), false.into());
        let sampling = Sampling {
            temperature: Some(0.7),
            top_k: Some(20),
            min_p: Some(0.0),
            max_tokens: Some(64),
            chat_template_kwargs: Some(kw),
            extra: [("priority".to_string(), json!(1))].into_iter().collect(),
            ..Default::default()
        };
        let req = ChatRequest { messages: vec![Message::user("hi")], sampling, top_logprobs: Some(5) };
        let body = request_body("m", &req, "max_completion_tokens");
        assert_eq!(
            body,
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.7,
                   "top_k": 20, "min_p": 0.0, "max_completion_tokens": 64,
                   "chat_template_kwargs": {"enable_thinking": false}, "logprobs": true, "top_logprobs": 5,
                   "n": 1, "stream": false, "priority": 1})
        );
    }

    #[test]
    fn parses_content_usage_reasoning_and_logprobs() {
        let body = json!({
            "model": "qwen", "choices": [{"index": 0, "finish_reason": "length",
              "message": {"role": "assistant", "content": "Hi", "reasoning_content": "think"},
              "logprobs": {"content": [{"token": "Hi", "logprob": -0.1, "bytes": [72, 105],
                 "top_logprobs": [{"token": "Hi", "logprob": -0.1}, {"token": "Hey", "logprob": -2.5}]}]}}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13}});
        let c = parse_response(body.to_string().as_bytes()).unwrap();
        assert_eq!(c.text, "Hi");
        assert_eq!(c.reasoning.as_deref(), Some("think"));
        assert!(c.truncated());
        assert_eq!(c.usage, Usage { prompt_tokens: 12, completion_tokens: 1 });
        let lp = c.logprobs.unwrap();
        assert_eq!(lp.tokens[0].token, TokenLogprob::text("Hi", -0.1));
        assert_eq!(lp.tokens[0].top[1], TokenLogprob::text("Hey", -2.5));
    }

    fn with_logprobs(content: serde_json::Value) -> Vec<u8> {
        json!({"choices": [{"message": {"role": "assistant", "content": "x"}, "logprobs": {"content": content}}]})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn token_ids_and_partial_bytes_are_kept() {
        // vLLM `return_tokens_as_token_ids`: ids, no text. A token ending inside a character:
        // the text is lossy, the bytes are the truth. Bytes equal to the text are not repeated.
        let body = with_logprobs(json!([
            {"token": "token_id:9906", "logprob": -0.5, "bytes": [116, 111],
             "top_logprobs": [{"token": "token_id:9906", "logprob": -0.5}, {"token": "token_id:13", "logprob": -1.25}]},
            {"token": "\u{fffd}", "logprob": -0.75, "bytes": [240, 159], "top_logprobs": []},
            {"token": " ok", "logprob": 0.0, "bytes": [32, 111, 107], "top_logprobs": null}
        ]));
        let lp = parse_response(&body).unwrap().logprobs.unwrap();
        assert_eq!(lp.tokens[0].token, TokenLogprob::id(9906, -0.5));
        assert_eq!(lp.tokens[0].top, vec![TokenLogprob::id(9906, -0.5), TokenLogprob::id(13, -1.25)]);
        assert_eq!(lp.tokens[1].token.bytes.as_deref(), Some(&[240u8, 159][..]));
        assert_eq!(lp.tokens[2].token, TokenLogprob::text(" ok", 0.0));
        assert!(lp.tokens[2].top.is_empty());
    }

    #[test]
    fn malformed_logprobs_are_errors() {
        for (content, needle) in [
            (json!([{"token": "a", "logprob": 0.5, "top_logprobs": []}]), "logprobs.content[0].logprob"),
            (json!([{"token": "a", "logprob": -0.5, "top_logprobs": [{"token": "b", "logprob": 2.0}]}]), "[0].top[0].logprob"),
            (json!([{"token": "a", "logprob": "-0.5"}]), "invalid type"),
            (json!([{"logprob": -0.5}]), "missing field `token`"),
            (json!([{"token": "a", "logprob": -0.5, "bytes": [256]}]), "invalid value"),
            (json!({"token": "a"}), "invalid type"),
        ] {
            let err = parse_response(&with_logprobs(content.clone())).unwrap_err();
            assert!(err.contains(needle), "{content}: {err}");
        }
        // No log-probs at all is not an error here (the teacher layer decides whether it needed them).
        assert_eq!(parse_response(&with_logprobs(serde_json::Value::Null)).unwrap().logprobs, None);
    }

    #[test]
    fn malformed_bodies_are_errors() {
        assert!(parse_response(b"{\"choices\": [").is_err());
        assert!(parse_response(br#"{"choices": []}"#).is_err());
        assert!(parse_response(br#"{"choices": [{"message": {"role": "assistant"}}]}"#).is_err());
        assert!(parse_response(b"<html>502 Bad Gateway</html>").is_err());
    }
}
