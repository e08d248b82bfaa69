//! Preference pairs in the Explicit, RM-Distiller, RewardBench, TRL and HH layouts.

use serde_json::{Map, Value};

use crate::message::{Conversation, Message, Role};
use crate::pair::PreferencePair;

use super::super::columns::Field;
use super::super::error::{FieldError, Refusal, RowProblem};
use super::super::hh;
use super::super::layout::{Layout, RecordKind};
use super::super::row::{check_text, MessagesOrText, Row};
use super::{check_prompt, messages_json, Codec, DecodeCtx, EncodeCtx};

/// RewardBench keeps these in columns; a PreferencePair keeps them in metadata.
const REWARD_BENCH_META: [Field; 3] = [Field::Subset, Field::ChosenModel, Field::RejectedModel];

impl Codec for PreferencePair {
    const KIND: RecordKind = RecordKind::Pair;

    fn record_id(&self) -> &str {
        &self.id
    }

    fn decode(mut row: Row, ctx: &DecodeCtx) -> Result<Self, FieldError> {
        let id = ctx.id(&mut row)?;
        let (prompt, chosen, rejected) = match ctx.layout {
            Layout::Explicit | Layout::RmDistiller | Layout::RewardBench => {
                let prompt = Conversation::from_user(row.text(ctx.col(Field::Prompt))?);
                (
                    prompt,
                    row.text(ctx.col(Field::Chosen))?,
                    row.text(ctx.col(Field::Rejected))?,
                )
            }
            Layout::TrlConversational => decode_trl(&mut row, ctx)?,
            Layout::AnthropicHh => decode_hh(&mut row, ctx)?,
            other => unreachable!("layout {other} holds no preference pairs"),
        };
        let mut pair = PreferencePair::new(id, prompt, chosen, rejected);
        let has = |f: Field| ctx.layout.spec(f).is_some();
        if has(Field::ChosenScore) {
            pair.chosen_score = ctx.score(&mut row, Field::ChosenScore)?;
            pair.rejected_score = ctx.score(&mut row, Field::RejectedScore)?;
        }
        if has(Field::Margin) {
            pair.margin = ctx.score(&mut row, Field::Margin)?;
        }
        if has(Field::TeacherResponse) {
            pair.teacher_response = ctx.text(&mut row, Field::TeacherResponse)?;
        }
        if has(Field::TeacherLogprobs) {
            let col = ctx.col(Field::TeacherLogprobs);
            pair.teacher_logprobs = row.opt_teacher_logprobs(col)?;
            if pair.teacher_logprobs.is_some() && pair.teacher_response.is_none() {
                return Err(FieldError::new(
                    col,
                    RowProblem::BadValue(format!(
                        "log-probs of a teacher response, but `{}` is empty",
                        ctx.col(Field::TeacherResponse)
                    )),
                ));
            }
        }
        let mut dedicated = Vec::new();
        if ctx.layout == Layout::RewardBench {
            for f in REWARD_BENCH_META {
                dedicated.push((f, ctx.text(&mut row, f)?));
            }
        }
        pair.metadata = ctx.metadata(row, dedicated)?;
        Ok(pair)
    }

    fn encode(&self, ctx: &EncodeCtx) -> Result<Map<String, Value>, Refusal> {
        let mut out = Map::new();
        ctx.id(&mut out, &self.id)?;
        match ctx.layout {
            Layout::Explicit | Layout::RmDistiller | Layout::RewardBench => {
                ctx.string_prompt(&mut out, &self.prompt)?;
                ctx.text(&mut out, Field::Chosen, Some(&self.chosen))?;
                ctx.text(&mut out, Field::Rejected, Some(&self.rejected))?;
            }
            Layout::TrlConversational => {
                let prompt_col = ctx.col(Field::Prompt);
                if self.prompt.is_empty() {
                    return Err(Refusal::new("prompt", "the prompt is empty"));
                }
                out.insert(
                    prompt_col.clone(),
                    messages_json(&prompt_col, self.prompt.messages())?,
                );
                for (field, text) in [
                    (Field::Chosen, &self.chosen),
                    (Field::Rejected, &self.rejected),
                ] {
                    let col = ctx.col(field);
                    let completion = messages_json(&col, &[Message::assistant(text.as_str())])?;
                    out.insert(col, completion);
                }
            }
            Layout::AnthropicHh => {
                let blank = self
                    .prompt
                    .messages()
                    .iter()
                    .position(|m| m.content.trim().is_empty());
                if let Some(i) = blank {
                    return Err(Refusal::new(
                        format!("prompt[{i}].content"),
                        "empty text; readers require non-blank text",
                    ));
                }
                for (field, text) in [
                    (Field::Chosen, &self.chosen),
                    (Field::Rejected, &self.rejected),
                ] {
                    super::text(field, text)?;
                    let transcript =
                        hh::render(&self.prompt, text).map_err(|m| Refusal::new(field.key(), m))?;
                    out.insert(ctx.col(field), Value::String(transcript));
                }
            }
            other => unreachable!("layout {other} holds no preference pairs"),
        }
        let layout = ctx.layout;
        if layout.spec(Field::ChosenScore).is_some() {
            ctx.score(&mut out, Field::ChosenScore, self.chosen_score)?;
            ctx.score(&mut out, Field::RejectedScore, self.rejected_score)?;
        } else if self.chosen_score.is_some() || self.rejected_score.is_some() {
            return Err(Refusal::new(
                "chosen_score",
                format!("layout `{layout}` has no score columns"),
            ));
        }
        if layout.spec(Field::Margin).is_some() {
            ctx.score(&mut out, Field::Margin, self.margin)?;
        } else if self.margin.is_some() {
            return Err(Refusal::new(
                "margin",
                format!("layout `{layout}` has no margin column"),
            ));
        }
        if layout.spec(Field::TeacherResponse).is_some() {
            ctx.text(
                &mut out,
                Field::TeacherResponse,
                self.teacher_response.as_deref(),
            )?;
        } else if self.teacher_response.is_some() {
            return Err(Refusal::new(
                "teacher_response",
                format!("layout `{layout}` has no teacher_response column"),
            ));
        }
        match (&self.teacher_logprobs, layout.spec(Field::TeacherLogprobs)) {
            (None, _) => {}
            (Some(_), None) => {
                return Err(Refusal::new(
                    "teacher_logprobs",
                    format!("layout `{layout}` has no teacher_logprobs column"),
                ))
            }
            (Some(lp), Some(_)) => {
                if self.teacher_response.is_none() {
                    return Err(Refusal::new(
                        "teacher_logprobs",
                        "log-probs without a teacher_response; readers would reject the row",
                    ));
                }
                lp.validate().map_err(|e| {
                    Refusal::new(format!("teacher_logprobs{}", e.path), e.message)
                })?;
                let value = serde_json::to_value(lp).expect("log-probs serialize");
                out.insert(ctx.col(Field::TeacherLogprobs), value);
            }
        }
        let dedicated: &[Field] = if layout == Layout::RewardBench {
            &REWARD_BENCH_META
        } else {
            &[]
        };
        ctx.metadata(&mut out, &self.metadata, dedicated)?;
        Ok(out)
    }
}

/// TRL conversational: `chosen`/`rejected` message lists, with the prompt either
/// - an explicit `prompt` message list (then chosen/rejected are one assistant message each),
/// - a `prompt` string with single-message completions (then it is one user message),
/// - a `prompt` string with full conversations in chosen/rejected (UltraFeedback-binarized
///   style; the string must equal the last user message of the shared prefix), or
/// - absent: the shared leading messages of chosen and rejected.
fn decode_trl(
    row: &mut Row,
    ctx: &DecodeCtx,
) -> Result<(Conversation, String, String), FieldError> {
    let (c_col, r_col, p_col) = (
        ctx.col(Field::Chosen),
        ctx.col(Field::Rejected),
        ctx.col(Field::Prompt),
    );
    let chosen = row.messages(c_col)?;
    let rejected = row.messages(r_col)?;
    match row.opt_messages_or_text(p_col)? {
        Some(MessagesOrText::Messages(prompt)) => {
            let prompt = Conversation(prompt);
            check_prompt(p_col, &prompt)?;
            Ok((
                prompt,
                completion(c_col, chosen)?,
                completion(r_col, rejected)?,
            ))
        }
        Some(MessagesOrText::Text(text)) if chosen.len() == 1 && rejected.len() == 1 => Ok((
            Conversation::from_user(text),
            completion(c_col, chosen)?,
            completion(r_col, rejected)?,
        )),
        Some(MessagesOrText::Text(text)) => {
            let (prompt, c, r) = implicit(c_col, r_col, chosen, rejected)?;
            if prompt.last_user_text() != Some(text.as_str())
                || prompt.messages().last().map(|m| m.role) != Some(Role::User)
            {
                return Err(FieldError::new(
                    p_col,
                    RowProblem::PrefixMismatch(format!(
                        "the `{p_col}` string is not the last user message of the conversation in `{c_col}`"
                    )),
                ));
            }
            Ok((prompt, c, r))
        }
        None => implicit(c_col, r_col, chosen, rejected),
    }
}

/// A completion list: exactly one assistant message.
fn completion(col: &str, mut messages: Vec<Message>) -> Result<String, FieldError> {
    if messages.len() != 1 {
        return Err(FieldError::new(
            col,
            RowProblem::WrongLength {
                expected: "1 assistant message (the prompt is in its own column)".into(),
                found: messages.len(),
            },
        ));
    }
    let m = messages.pop().expect("length checked");
    if m.role != Role::Assistant {
        return Err(FieldError::new(
            format!("{col}[0].role"),
            RowProblem::BadValue(format!(
                "the response has role {}; expected assistant",
                m.role.as_str()
            )),
        ));
    }
    Ok(m.content)
}

fn implicit(
    c_col: &str,
    r_col: &str,
    mut chosen: Vec<Message>,
    mut rejected: Vec<Message>,
) -> Result<(Conversation, String, String), FieldError> {
    let last = |col: &str, msgs: &mut Vec<Message>| -> Result<String, FieldError> {
        if msgs.len() < 2 {
            return Err(FieldError::new(
                col,
                RowProblem::WrongLength {
                    expected:
                        "at least 2 messages (prompt and response) when there is no prompt column"
                            .into(),
                    found: msgs.len(),
                },
            ));
        }
        let m = msgs.pop().expect("length checked");
        if m.role != Role::Assistant {
            return Err(FieldError::new(
                format!("{col}[{}].role", msgs.len()),
                RowProblem::BadValue(format!(
                    "the final message has role {}; expected assistant",
                    m.role.as_str()
                )),
            ));
        }
        Ok(m.content)
    };
    let c = last(c_col, &mut chosen)?;
    let r = last(r_col, &mut rejected)?;
    if chosen != rejected {
        return Err(FieldError::new(
            r_col,
            RowProblem::PrefixMismatch(prefix_diff(&chosen, &rejected)),
        ));
    }
    Ok((Conversation(chosen), c, r))
}

fn prefix_diff(a: &[Message], b: &[Message]) -> String {
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(i) => format!("message {i} of the shared prompt differs"),
        None => format!(
            "chosen has {} prompt messages, rejected {}",
            a.len(),
            b.len()
        ),
    }
}

fn decode_hh(row: &mut Row, ctx: &DecodeCtx) -> Result<(Conversation, String, String), FieldError> {
    let (c_col, r_col) = (ctx.col(Field::Chosen), ctx.col(Field::Rejected));
    let chosen = row.text(c_col)?;
    let rejected = row.text(r_col)?;
    let (prompt, c, r) = hh::split_pair(&chosen, &rejected).map_err(|e| match e {
        hh::HhError::Unparsable { side, message } => {
            let col = if side == hh::Side::Chosen {
                c_col
            } else {
                r_col
            };
            FieldError::new(col, RowProblem::BadHh(message))
        }
        hh::HhError::PrefixMismatch(m) => FieldError::new(r_col, RowProblem::PrefixMismatch(m)),
    })?;
    check_prompt(c_col, &prompt)?;
    Ok((prompt, check_text(c_col, c)?, check_text(r_col, r)?))
}
