//! Sample records for every layout, shared by the integration tests.
#![allow(dead_code)]

use rmd_core::{
    BestOfN, Conversation, GeneratedToken, JudgeLabel, JudgePair, Message, Metadata,
    PreferencePair, StyleMatrix, TeacherLogprobs, TokenLogprob,
};
use serde_json::json;

pub fn meta(v: serde_json::Value) -> Metadata {
    v.as_object().expect("object").clone()
}

/// Text that exercises escaping: quotes, newlines, tabs, non-ASCII, emoji.
pub const TRICKY: &str = "Grüße 👋 \"quoted\"\n\tsecond line, {brackets} [and] commas,";

/// Top-k log-probs exercising every member: text only, id only, id + text, raw bytes of a
/// token that ends inside a character, an empty alternative list, a zero log-prob.
pub fn sample_logprobs() -> TeacherLogprobs {
    let t = |text: &str, lp: f64| TokenLogprob::text(text, lp);
    TeacherLogprobs::new(vec![
        GeneratedToken {
            token: t("Grüße", -0.25),
            top: vec![t("Grüße", -0.25), t("Hallo", -1.75), TokenLogprob::id(17, -3.5)],
        },
        GeneratedToken {
            token: TokenLogprob { id: Some(4_000_000_000), text: Some(" 👋".into()), bytes: None, logprob: 0.0 },
            top: vec![],
        },
        GeneratedToken {
            token: TokenLogprob { id: None, text: Some("\u{fffd}".into()), bytes: Some(vec![0xf0, 0x9f]), logprob: -0.125 },
            top: vec![TokenLogprob { id: Some(0), text: None, bytes: Some(vec![0xf0, 0x9f]), logprob: -0.125 }],
        },
    ])
}

fn base_pair(i: usize) -> PreferencePair {
    let mut p = PreferencePair::new(
        format!("pair-{i}"),
        Conversation::from_user(format!("Question {i}: {TRICKY}")),
        format!("Good answer {i}"),
        format!("Bad answer {i}"),
    );
    p.metadata = meta(json!({"source": "unit", "nested": {"k": [1, 2.5, null, "s"]}}));
    p
}

/// Pairs for the string-prompt layouts, with and without the optional fields.
pub fn explicit_pairs() -> Vec<PreferencePair> {
    let mut a = base_pair(0);
    a.chosen_score = Some(9.0);
    a.rejected_score = Some(2.5);
    a.margin = Some(6.5);
    a.teacher_response = Some(format!("Teacher: {TRICKY}"));
    a.teacher_logprobs = Some(sample_logprobs());
    let mut b = base_pair(1);
    b.metadata = Metadata::new();
    let mut c = base_pair(2);
    c.chosen_score = Some(-1.25);
    c.rejected_score = Some(0.0);
    vec![a, b, c]
}

pub fn rm_distiller_pairs() -> Vec<PreferencePair> {
    (0..3)
        .map(|i| {
            let mut p = base_pair(i);
            p.chosen_score = Some(8.0 + i as f64 * 0.5);
            p.rejected_score = Some(3.0);
            p.teacher_response = Some(format!("y_T {i}"));
            if i != 1 {
                p.teacher_logprobs = Some(sample_logprobs());
            }
            if i == 1 {
                p.metadata = Metadata::new();
            }
            p
        })
        .collect()
}

pub fn reward_bench_pairs() -> Vec<PreferencePair> {
    (0..3)
        .map(|i| {
            let mut p = base_pair(i);
            p.metadata.insert(
                "subset".into(),
                json!(["alpacaeval-easy", "xstest-should-refuse", "hep-rust"][i]),
            );
            if i != 1 {
                p.metadata.insert("chosen_model".into(), json!("gpt-4"));
                p.metadata
                    .insert("rejected_model".into(), json!("llama-2-7b"));
            }
            p
        })
        .collect()
}

fn multi_turn_prompt(i: usize) -> Conversation {
    Conversation::new(vec![
        Message::user(format!("Hi, I am user {i}.")),
        Message::assistant("Hello! How can I help?"),
        Message::user(format!("Tell me about {TRICKY}")),
    ])
}

pub fn trl_pairs() -> Vec<PreferencePair> {
    let mut a = base_pair(0);
    a.prompt = multi_turn_prompt(0);
    a.margin = Some(1.5);
    a.teacher_response = Some("Fine, thanks.".into());
    a.teacher_logprobs = Some(sample_logprobs());
    let mut b = base_pair(1);
    b.prompt = Conversation::new(vec![
        Message::system("Be brief."),
        Message::user("Why is the sky blue?"),
    ]);
    b.metadata = Metadata::new();
    let c = base_pair(2);
    vec![a, b, c]
}

pub fn hh_pairs() -> Vec<PreferencePair> {
    let mut a = base_pair(0);
    a.prompt = multi_turn_prompt(0);
    a.teacher_response = Some("Sure.".into());
    a.teacher_logprobs = Some(sample_logprobs());
    let mut b = base_pair(1);
    b.chosen_score = Some(7.0);
    b.rejected_score = Some(4.0);
    b.metadata = Metadata::new();
    let c = base_pair(2);
    vec![a, b, c]
}

pub fn best_of_n() -> Vec<BestOfN> {
    vec![
        BestOfN {
            id: "rb2-0".into(),
            prompt: Conversation::from_user("Capital of France?"),
            chosen: vec!["Paris.".into()],
            rejected: vec!["Lyon.".into(), "Nice.".into(), format!("Lille {TRICKY}")],
            num_correct: 1,
            subset: "Factuality".into(),
            metadata: Metadata::new(),
        },
        BestOfN {
            id: "rb2-1".into(),
            prompt: Conversation::from_user("Say hi."),
            chosen: vec!["hi".into(), "hello".into()],
            rejected: vec!["bye".into()],
            num_correct: 2,
            subset: "Ties".into(),
            metadata: meta(json!({"models": ["a", "b"]})),
        },
    ]
}

pub fn style_matrices() -> Vec<StyleMatrix> {
    vec![
        StyleMatrix {
            id: "rmb-0".into(),
            prompt: Conversation::from_user("Sum 1..3?"),
            chosen: ["6".into(), "The sum is 6.".into(), "**6**".into()],
            rejected: [
                "5".into(),
                "The sum is 5.".into(),
                format!("**5** {TRICKY}"),
            ],
            domain: "math".into(),
            metadata: Metadata::new(),
        },
        StyleMatrix {
            id: "rmb-1".into(),
            prompt: Conversation::from_user("Greet."),
            chosen: ["Hi".into(), "Hi there.".into(), "# Hi".into()],
            rejected: ["Go".into(), "Go away.".into(), "# Go".into()],
            domain: "chat".into(),
            metadata: meta(json!({"note": 1})),
        },
    ]
}

pub fn judge_pairs() -> Vec<JudgePair> {
    vec![
        JudgePair {
            id: "jb-0".into(),
            prompt: Conversation::from_user(format!("Which is right? {TRICKY}")),
            response_a: "A says 4".into(),
            response_b: "B says 5".into(),
            label: JudgeLabel::AOverB,
            source: "mmlu-pro-math".into(),
            metadata: meta(json!({"original_id": "q-17", "response_model": "gpt-4o"})),
        },
        JudgePair {
            id: "jb-1".into(),
            prompt: Conversation::from_user("Sort [3,1,2]."),
            response_a: "[3,1,2]".into(),
            response_b: "[1,2,3]".into(),
            label: JudgeLabel::BOverA,
            source: "livecodebench".into(),
            metadata: meta(json!({"extra": true})),
        },
    ]
}
