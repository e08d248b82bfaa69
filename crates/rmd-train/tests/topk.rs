//! The KL regularizer with the teacher's top-k log-probs stored at synthesis time
//! (`kl_source = "stored"`): its value against a host computation (with truncation), that it
//! trains, that misaligned tokens are refused naming the pair and position, and exact resume.

use burn::backend::{ndarray::NdArray, Autodiff};
use burn::module::AutodiffModule;
use rmd_core::{Conversation, GeneratedToken, PreferencePair, TeacherLogprobs, TokenLogprob};
use rmd_model::text::truncate::make_batch;
use rmd_model::text::word_level::word_level_encoder;
use rmd_model::{DecoderConfig, Family, HeadKind, ModelInput, PaddingSide, RewardModel, RewardModelConfig, TextEncoder};
use rmd_train::trainer::TokenSpec;
use rmd_train::*;

type B = Autodiff<NdArray>;

const WORDS: &[&str] =
    &["what", "is", "the", "answer", "good", "bad", "fine", "great", "poor", "it", "very", "a", "reply", "?", "."];

fn encoder() -> TextEncoder {
    word_level_encoder(WORDS.iter().copied(), true).unwrap()
}

fn tok(text: &str, p: f64, top: &[(&str, f64)]) -> GeneratedToken {
    GeneratedToken { token: TokenLogprob::text(text, p.ln()), top: top.iter().map(|(t, q)| TokenLogprob::text(*t, q.ln())).collect() }
}

/// The teacher's log-probs over "the answer is a good reply ." for pair `i`: ragged top-k
/// lists, an empty one (sampled token only), a sampled token missing from its top-k, and two
/// spellings (" ." and ".") of one student token.
fn logprobs(i: usize) -> TeacherLogprobs {
    let a = 0.5 + 0.05 * (i % 4) as f64;
    TeacherLogprobs::new(vec![
        tok("the", 0.9, &[]),
        tok(" answer", a, &[(" answer", a), (" reply", 0.2), (" it", 0.1)]),
        tok(" is", 0.8, &[(" is", 0.8), (" very", 0.1)]),
        tok(" a", 0.7, &[(" a", 0.7), (" the", 0.2), (" very", 0.05), (" it", 0.02)]),
        tok(" good", 0.15, &[(" fine", 0.5), (" great", 0.3)]),
        tok(" reply", 0.95, &[(" reply", 0.95)]),
        tok(" .", 0.6, &[(" .", 0.6), (".", 0.3), (" ?", 0.05)]),
    ])
}

const Y: &str = "the answer is a good reply .";

fn pairs(n: usize) -> Vec<PreferencePair> {
    (0..n)
        .map(|i| {
            let strong = i % 2 == 0;
            let mut p = PreferencePair::new(
                format!("p{i}"),
                Conversation::from_user(if i % 3 == 0 { "what is the answer ?" } else { "what is it ?" }),
                if strong { "a very good reply ." } else { "a fine reply ." },
                if strong { "a very bad reply ." } else { "a poor reply ." },
            );
            p.chosen_score = Some(if strong { 9.0 } else { 7.0 });
            p.rejected_score = Some(if strong { 3.0 } else { 4.0 });
            p.teacher_response = Some(Y.into());
            p.teacher_logprobs = Some(logprobs(i));
            p
        })
        .collect()
}

fn stored_set(pairs: &[PreferencePair]) -> EncodedSet {
    EncodedSet::encode_with(pairs, &encoder(), EncodeOptions { need_scores: true, need_teacher: true, stored_kl: true }).unwrap()
}

fn model(seed: u64) -> RewardModel<B> {
    let vocab = encoder().tokenizer().get_vocab_size(true);
    let dec = DecoderConfig::preset(Family::Qwen2, vocab, 16, 32, 1, 2, 1);
    RewardModel::init(&RewardModelConfig::new(dec, HeadKind::Linear), seed, &Default::default()).unwrap()
}

fn config(kl_temperature: f64) -> TrainConfig {
    TrainConfig {
        weights: LossWeights { reward: 0.0, sft: 0.0, kl: 1.0 },
        kl_source: KlSource::Stored,
        kl_temperature,
        optimizer: OptimizerConfig { lr: 1e-2, warmup_ratio: 0.0, ..OptimizerConfig::default() },
        pairs_per_micro_batch: 4,
        accumulation_steps: 1,
        epochs: 1,
        max_length: 32,
        progress_bar: false,
        ..TrainConfig::default()
    }
}

fn spec() -> TokenSpec {
    TokenSpec { bos: Some(2), pad: 0 }
}

/// The KL the trainer reports at step 1 (before any update: the initial model).
fn first_kl(cfg: &TrainConfig, data: &[PreferencePair], seed: u64) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let mut t = Trainer::<B>::new(model(seed), cfg.clone(), spec(), stored_set(data), None, None, dir.path(), Default::default()).unwrap();
    let rec = t.train_step().unwrap();
    rec.components.iter().find(|(n, _)| n == "kl").unwrap().1
}

fn log_softmax(z: &[f64]) -> Vec<f64> {
    let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let lse = m + z.iter().map(|x| (x - m).exp()).sum::<f64>().ln();
    z.iter().map(|x| x - lse).collect()
}

/// `T^2 KL(p || q)` by hand: student logits from a plain forward of the LM rows (truncated
/// like the trainer does: BOS kept, then the row's last `max_len - 1` tokens), teacher `p` =
/// softmax(logprob / T) over the distinct student tokens of each position's candidates.
fn host_kl(data: &[PreferencePair], seed: u64, max_len: usize, t: f64) -> f64 {
    let enc = encoder();
    let m = model(seed).valid();
    let rows: Vec<_> = data.iter().map(|p| enc.encode_pair(&p.prompt, Y).unwrap()).collect();
    let (batch, _) = make_batch(&rows, max_len, Some(2), 0, PaddingSide::Right).unwrap();
    let device = Default::default();
    let input = ModelInput::<NdArray>::new(&batch, vec![], (0..rows.len()).collect(), &device).unwrap();
    let hidden = m.forward(&input).lm_hidden.unwrap();
    let [_, len, h] = hidden.dims();
    let hidden: Vec<f32> = hidden.into_data().to_vec().unwrap();
    let head = m.lm_head_weight().unwrap();
    let v = head.dims()[0];
    let head: Vec<f32> = head.into_data().to_vec().unwrap();
    let id = |w: &str| enc.tokenizer().token_to_id(w.trim()).unwrap() as usize;
    let mut total = 0.0;
    for (r, (p, row)) in data.iter().zip(&rows).enumerate() {
        let lp = p.teacher_logprobs.as_ref().unwrap();
        // Word-level template: the response is the row's tail, one token per word.
        let first = row.ids.len() - lp.len();
        let dropped = row.ids.len().saturating_sub(max_len);
        let (mut sum, mut count) = (0.0, 0usize);
        for (j, g) in lp.tokens.iter().enumerate() {
            let orig = first + j;
            if dropped > 0 && orig < 1 + dropped {
                continue; // cut by truncation
            }
            let col = orig - dropped;
            if col == 0 {
                continue; // nothing predicts the first token
            }
            let pos = col - 1;
            let z: Vec<f64> = (0..v)
                .map(|vi| (0..h).map(|k| hidden[(r * len + pos) * h + k] as f64 * head[vi * h + k] as f64).sum::<f64>() / t)
                .collect();
            let log_q = log_softmax(&z);
            // Distinct student tokens among the alternatives and the sampled token.
            let mut cand: Vec<(usize, f64)> = Vec::new();
            let mut add = |i: usize, l: f64| match cand.iter_mut().find(|(c, _)| *c == i) {
                Some((_, x)) => *x = (x.exp() + l.exp()).ln(),
                None => cand.push((i, l)),
            };
            for alt in &g.top {
                add(id(alt.text.as_deref().unwrap()), alt.logprob);
            }
            if !g.top.iter().any(|a| a.text == g.token.text) {
                add(id(g.token.text.as_deref().unwrap()), g.token.logprob);
            }
            let scaled: Vec<f64> = cand.iter().map(|(_, l)| l / t).collect();
            let log_p = log_softmax(&scaled);
            sum += cand.iter().zip(&log_p).map(|((i, _), lp)| lp.exp() * (lp - log_q[*i])).sum::<f64>();
            count += 1;
        }
        total += sum / count as f64;
    }
    t * t * total / data.len() as f64
}

#[test]
fn stored_kl_equals_a_host_computation() {
    let data = pairs(4);
    for t in [1.0, 2.0] {
        let got = first_kl(&config(t), &data, 11);
        let want = host_kl(&data, 11, 32, t);
        assert!((got - want).abs() <= 1e-5 * want.abs().max(1e-3), "T = {t}: trainer {got} vs host {want}");
        assert!(want > 0.1, "a random student is far from the teacher: {want}");
    }
}

#[test]
fn truncation_cuts_the_teacher_rows_consistently() {
    // Teacher rows are 15 tokens ("<s><user> what is the answer ? <assistant>" + 7) or 14;
    // with max_length 6 the prompt and the first 2 or 1 teacher tokens go, BOS stays.
    let data = pairs(4);
    let mut cfg = config(1.0);
    cfg.max_length = 6;
    let got = first_kl(&cfg, &data, 5);
    let want = host_kl(&data, 5, 6, 1.0);
    assert!((got - want).abs() <= 1e-5 * want.abs().max(1e-3), "trainer {got} vs host {want}");
    // Not the untruncated value: the cut really changed which tokens are scored.
    assert!((host_kl(&data, 5, 32, 1.0) - want).abs() > 1e-3);
}

#[test]
fn training_on_stored_topk_reduces_the_kl() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(1.0);
    cfg.epochs = 25;
    let mut t = Trainer::<B>::new(model(3), cfg, spec(), stored_set(&pairs(8)), None, None, dir.path(), Default::default()).unwrap();
    let mut kl = Vec::new();
    t.fit(&mut |r| {
        kl.push(r.components.iter().find(|(n, _)| n == "kl").unwrap().1);
        StepControl::Continue
    })
    .unwrap();
    assert_eq!(kl.len(), 50);
    assert!(kl.iter().all(|v| v.is_finite() && *v >= 0.0), "{kl:?}");
    assert!(kl[49] < 0.25 * kl[0], "kl {} -> {}", kl[0], kl[49]);
}

#[test]
fn misaligned_teacher_tokens_are_an_error_naming_pair_and_position() {
    let enc = encoder();
    let opts = EncodeOptions { need_scores: true, need_teacher: true, stored_kl: true };
    // The teacher split "good" differently from the student: token 4 is " go" + "od".
    let mut data = pairs(3);
    let lp = data[1].teacher_logprobs.as_mut().unwrap();
    lp.tokens[4] = tok(" fine", 0.5, &[]);
    let err = EncodedSet::encode_with(&data, &enc, opts).unwrap_err().to_string();
    assert!(err.contains("pair `p1` (row 1)") && err.contains("at token 4") && err.contains("\" fine\""), "{err}");
    // One token too few.
    let mut data = pairs(3);
    data[2].teacher_logprobs.as_mut().unwrap().tokens.pop();
    let err = EncodedSet::encode_with(&data, &enc, opts).unwrap_err().to_string();
    assert!(err.contains("pair `p2` (row 2)") && err.contains("has 7 tokens but the teacher generated 6"), "{err}");
    // A word the student does not know.
    let mut data = pairs(2);
    data[0].teacher_logprobs.as_mut().unwrap().tokens[1].top.push(TokenLogprob::text(" zebra", -5.0));
    let err = EncodedSet::encode_with(&data, &enc, opts).unwrap_err().to_string();
    assert!(err.contains("pair `p0` (row 0)") && err.contains("alternative 3 of teacher token 1") && err.contains("zebra"), "{err}");
    // No stored log-probs at all.
    let mut data = pairs(2);
    data[1].teacher_logprobs = None;
    let err = EncodedSet::encode_with(&data, &enc, opts).unwrap_err().to_string();
    assert!(err.contains("pair `p1` (row 1)") && err.contains("teacher_logprobs"), "{err}");

    // The trainer refuses a set encoded without them, and a teacher model on top of them.
    let dir = tempfile::tempdir().unwrap();
    let plain = EncodedSet::encode(&pairs(4), &enc, true, true).unwrap();
    let err = Trainer::<B>::new(model(1), config(1.0), spec(), plain, None, None, dir.path(), Default::default()).err().unwrap();
    assert!(err.to_string().contains("pair `p0` (row 0)") && err.to_string().contains("stored top-k"), "{err}");
    let teacher = Some(model(2).valid());
    let err = Trainer::<B>::new(model(1), config(1.0), spec(), stored_set(&pairs(4)), None, teacher, dir.path(), Default::default()).err().unwrap();
    assert!(err.to_string().contains("a teacher model was given too"), "{err}");
}

#[test]
fn resumes_exactly_with_stored_topk() {
    let mut cfg = config(1.0);
    cfg.weights = LossWeights { reward: 1.0, sft: 0.5, kl: 0.5 };
    cfg.accumulation_steps = 2;
    cfg.epochs = 3;
    cfg.checkpoint_every = Some(2);
    cfg.max_length = 7; // teacher rows lose their prompt and up to one teacher token
    let data = pairs(16);
    let run = |out: &std::path::Path, stop: Option<usize>| {
        let mut t = Trainer::<B>::new(model(7), cfg.clone(), spec(), stored_set(&data), None, None, out, Default::default()).unwrap();
        let mut curve = Vec::new();
        t.fit(&mut |r| {
            let kl = r.components.iter().find(|(n, _)| n == "kl").unwrap().1;
            curve.push((r.step, r.loss, kl, r.grad_norm));
            if Some(r.step) == stop { StepControl::Stop } else { StepControl::Continue }
        })
        .unwrap();
        curve
    };
    let full_dir = tempfile::tempdir().unwrap();
    let full = run(full_dir.path(), None);
    assert_eq!(full.len(), 6);
    let dir = tempfile::tempdir().unwrap();
    let first = run(dir.path(), Some(3));
    let rest = run(dir.path(), None);
    assert_eq!(rest.first().map(|r| r.0), Some(3));
    let resumed: Vec<_> = first[..2].iter().chain(&rest).cloned().collect();
    for (a, b) in resumed.iter().zip(&full) {
        assert_eq!(a.0, b.0);
        for (x, y, what) in [(a.1, b.1, "loss"), (a.2, b.2, "kl"), (a.3, b.3, "grad norm")] {
            assert!((x - y).abs() <= 1e-5 * y.abs().max(1.0), "step {}: {what} {x} vs {y}", a.0);
        }
    }
    // The KL source is part of the run's identity: a model-KL config does not resume it.
    let mut other = cfg.clone();
    other.kl_source = KlSource::Model;
    let err = Trainer::<B>::new(model(7), other, spec(), stored_set(&data), None, Some(model(8).valid()), dir.path(), Default::default()).err().unwrap();
    assert!(err.to_string().contains("different config"), "{err}");
}
