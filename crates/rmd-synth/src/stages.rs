//! The stages of one row (method.md §2): annotate (both orders), optional tie
//! re-grading, filter, teacher reference (with its top-k log-probs when
//! `teacher.settings.reference_top_logprobs` is set), contrastive refinement, calibrated
//! scoring, final pair. Each is a function of the row plus teacher calls; the row ends kept,
//! dropped with a reason, or failed (transient, redone on resume).

use std::collections::BTreeMap;

use rmd_core::PreferencePair;
use rmd_teacher::{CallLog, Judgment, Teacher, TeacherError};
use serde_json::json;

use crate::error::SynthError;
use crate::input::SynthInput;
use crate::outcome::{Annotation, DropReason, RowOutcome, RowStatus, RowUsage, Stage};
use crate::pipeline::{PipelineConfig, RefineAgainst, Route};

/// Usage and raw completions gathered along a row.
#[derive(Default)]
struct Trace {
    usage: RowUsage,
    raw: BTreeMap<String, Vec<String>>,
}

impl Trace {
    fn absorb(&mut self, site: &str, log: &CallLog) {
        self.usage.absorb(log);
        if !log.raw.is_empty() {
            self.raw.entry(site.to_string()).or_default().extend(log.raw.iter().cloned());
        }
    }
}

/// Maps a teacher failure to the row's status; configuration-level failures stop the run.
fn on_teacher_error(stage: Stage, site: &str, e: TeacherError, trace: &mut Trace) -> Result<RowStatus, SynthError> {
    if let Some(log) = e.log() {
        trace.absorb(site, log);
    }
    match e {
        TeacherError::Unparseable { last, .. } => {
            Ok(RowStatus::Dropped { drop: DropReason::Unparseable { stage, error: last.to_string() } })
        }
        TeacherError::Backend { ref source, .. } if source.is_transient() => {
            Ok(RowStatus::Failed { stage, error: source.to_string() })
        }
        TeacherError::Backend { source, .. } => {
            Ok(RowStatus::Dropped { drop: DropReason::TeacherRejected { stage, error: source.to_string() } })
        }
        other @ (TeacherError::Template { .. } | TeacherError::Unsupported { .. }) => Err(SynthError::Teacher(other)),
    }
}

fn same_text(x: &str, y: &str) -> bool {
    x.trim() == y.trim()
}

/// Judges (a, b), and (b, a) when asked, concurrently. Returns the annotation or the
/// status that ends the row.
async fn annotate(
    teacher: &dyn Teacher,
    cfg: &PipelineConfig,
    input: &SynthInput,
    avoid_ties: bool,
    stage: Stage,
    trace: &mut Trace,
) -> Result<Result<Annotation, RowStatus>, SynthError> {
    let tag = if avoid_ties { "regrade" } else { "judge" };
    let first = teacher.judge(&input.prompt, &input.a, &input.b, avoid_ties);
    let (ab, ba): (Result<Judgment, TeacherError>, Option<Result<Judgment, TeacherError>>) = if cfg.both_orders {
        let second = teacher.judge(&input.prompt, &input.b, &input.a, avoid_ties);
        let (x, y) = tokio::join!(first, second);
        (x, Some(y))
    } else {
        (first.await, None)
    };
    let site_ab = format!("{tag}_a_first");
    let site_ba = format!("{tag}_b_first");
    // Absorb every log before reporting an error, so nothing paid for is lost.
    let ab = match ab {
        Ok(j) => {
            trace.absorb(&site_ab, &j.log);
            Ok(j)
        }
        Err(e) => Err(e),
    };
    let ba = match ba {
        Some(Ok(j)) => {
            trace.absorb(&site_ba, &j.log);
            Some(Ok(j))
        }
        other => other,
    };
    let ab = match ab {
        Ok(j) => j,
        Err(e) => {
            if let Some(Err(e2)) = ba {
                if let Some(log) = e2.log() {
                    trace.absorb(&site_ba, log);
                }
            }
            return on_teacher_error(stage, &site_ab, e, trace).map(Err);
        }
    };
    let ba = match ba {
        None => None,
        Some(Ok(j)) => Some(j),
        Some(Err(e)) => return on_teacher_error(stage, &site_ba, e, trace).map(Err),
    };
    let a_first = (ab.score_a, ab.score_b);
    Ok(Ok(match ba {
        None => Annotation { a_first, b_first: None, score_a: a_first.0, score_b: a_first.1, order_flip: None, before_regrade: None },
        Some(j) => {
            let b_first = (j.score_b, j.score_a);
            let sign = |d: f64| if d > 0.0 { 1 } else if d < 0.0 { -1 } else { 0 };
            let flip = sign(a_first.0 - a_first.1) * sign(b_first.0 - b_first.1) < 0;
            Annotation {
                a_first,
                b_first: Some(b_first),
                score_a: (a_first.0 + b_first.0) / 2.0,
                score_b: (a_first.1 + b_first.1) / 2.0,
                order_flip: Some(flip),
                before_regrade: None,
            }
        }
    }))
}

/// Runs every stage for one row.
pub async fn process_row(teacher: &dyn Teacher, cfg: &PipelineConfig, input: SynthInput) -> Result<RowOutcome, SynthError> {
    let mut trace = Trace::default();
    let mut annotation = None;
    let status = run_stages(teacher, cfg, &input, &mut trace, &mut annotation).await?;
    Ok(RowOutcome { id: input.id, outcome: status, annotation, usage: trace.usage, raw: trace.raw })
}

macro_rules! teacher_step {
    ($call:expr, $stage:expr, $site:expr, $trace:expr) => {
        match $call.await {
            Ok(v) => {
                $trace.absorb($site, &v.log);
                v
            }
            Err(e) => return on_teacher_error($stage, $site, e, $trace),
        }
    };
}

async fn run_stages(
    teacher: &dyn Teacher,
    cfg: &PipelineConfig,
    input: &SynthInput,
    trace: &mut Trace,
    annotation_out: &mut Option<Annotation>,
) -> Result<RowStatus, SynthError> {
    let dropped = |drop: DropReason| Ok(RowStatus::Dropped { drop });
    if same_text(&input.a, &input.b) {
        return dropped(DropReason::IdenticalTexts);
    }

    // 1. Pair annotation.
    let mut ann = match annotate(teacher, cfg, input, false, Stage::Annotate, trace).await? {
        Ok(a) => a,
        Err(status) => return Ok(status),
    };
    // 2. Optional tie re-grading with the "avoid equal scores" instruction.
    if cfg.regrade_ties && ann.score_a == ann.score_b {
        match annotate(teacher, cfg, input, true, Stage::Regrade, trace).await? {
            Ok(mut re) => {
                re.before_regrade = Some((ann.score_a, ann.score_b));
                ann = re;
            }
            Err(status) => {
                *annotation_out = Some(ann);
                return Ok(status);
            }
        }
    }
    *annotation_out = Some(ann.clone());

    // 3. Filters.
    if cfg.drop_order_flips && ann.order_flip == Some(true) {
        return dropped(DropReason::OrderDisagreement);
    }
    let (chosen, rejected, chosen_score, rejected_score) = if input.labeled {
        if ann.score_a == ann.score_b {
            return dropped(DropReason::Tie);
        }
        if ann.score_a < ann.score_b {
            return dropped(DropReason::NotPreferred);
        }
        (&input.a, &input.b, ann.score_a, ann.score_b)
    } else if ann.score_a == ann.score_b {
        return dropped(DropReason::Tie);
    } else if ann.score_a > ann.score_b {
        (&input.a, &input.b, ann.score_a, ann.score_b)
    } else {
        (&input.b, &input.a, ann.score_b, ann.score_a)
    };
    let gap = chosen_score - rejected_score;
    if gap <= cfg.min_margin {
        return dropped(DropReason::BelowMargin { gap });
    }

    let mut metadata = input.metadata.clone();
    let mut synth = serde_json::Map::new();
    synth.insert("route".into(), json!(cfg.route));
    synth.insert("annotation".into(), serde_json::to_value(&ann).expect("serializable"));
    if !input.labeled {
        // Record which pool member ended up chosen.
        synth.insert("chosen_is_a".into(), json!(std::ptr::eq(chosen, &input.a)));
    }

    let reference = if cfg.route == Route::Refine || cfg.annotate_reference {
        Some(teacher_step!(teacher.reference(&input.prompt), Stage::Reference, "reference", trace))
    } else {
        None
    };

    if cfg.route == Route::Annotate {
        let mut pair = PreferencePair::new(input.id.clone(), input.prompt.clone(), chosen.clone(), rejected.clone());
        pair.chosen_score = Some(chosen_score);
        pair.rejected_score = Some(rejected_score);
        if let Some(r) = reference {
            pair.teacher_response = Some(r.text);
            pair.teacher_logprobs = r.logprobs;
        }
        metadata.insert("synth".into(), serde_json::Value::Object(synth));
        pair.metadata = metadata;
        return Ok(RowStatus::Kept { pair: Box::new(pair) });
    }
    let reference = reference.expect("generated for the refine route");

    // 4. Contrastive refinement against y_T (or the original chosen for ablations).
    let preferred = match cfg.refine_against {
        RefineAgainst::TeacherReference => reference.text.as_str(),
        RefineAgainst::OriginalChosen => chosen.as_str(),
    };
    let refinement = teacher_step!(teacher.refine(&input.prompt, preferred, rejected), Stage::Refine, "refine", trace);
    if same_text(&refinement.modified, rejected) {
        return dropped(DropReason::RefinementUnchanged);
    }

    // 5. Self-calibrated scoring in the same conversation.
    let calibrated = teacher_step!(teacher.calibrated_score(&refinement, rejected_score), Stage::Calibrate, "calibrate", trace);
    if cfg.drop_refined_not_better && calibrated.score <= rejected_score {
        return dropped(DropReason::RefinedNotBetter { chosen_score: calibrated.score, rejected_score });
    }

    // 6. Final row: chosen := refined, teacher_response := y_T, original chosen kept in metadata.
    let mut pair = PreferencePair::new(input.id.clone(), input.prompt.clone(), refinement.modified.clone(), rejected.clone());
    pair.chosen_score = Some(calibrated.score);
    pair.rejected_score = Some(rejected_score);
    pair.teacher_response = Some(reference.text.clone());
    pair.teacher_logprobs = reference.logprobs.clone();
    metadata.insert("original_chosen".into(), json!(chosen));
    metadata.insert("original_chosen_score".into(), json!(chosen_score));
    synth.insert("refine_reasoning".into(), json!(refinement.reasoning));
    synth.insert("refine_extract_route".into(), json!(refinement.route));
    synth.insert("refine_against".into(), json!(cfg.refine_against));
    metadata.insert("synth".into(), serde_json::Value::Object(synth));
    pair.metadata = metadata;
    Ok(RowStatus::Kept { pair: Box::new(pair) })
}
