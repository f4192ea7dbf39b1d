//! What an LLM run asks: prompts from a file (`--prompts`: JSONL or a ShareGPT dataset) or
//! made to a length in tokens (`--input-tokens`), each request's `max_tokens`
//! (`--output-tokens`, `--exact-output`), and the request body that carries them.
//!
//! Synthetic prompts are words that are one token each by the run's tokenizer, drawn from
//! the run's seed and the request's number: every request gets its own prompt (no server
//! prefix cache helps by accident), the same one in every run with that seed, and exactly
//! the asked number of tokens — the tokenizers split text before each space-led word, so a
//! prompt of N such words is N tokens (a test checks it for every bundled tokenizer).
//! `--shared-prefix-tokens P` puts the same P words before every prompt.
//!
//! Used by `cli` (building them, before any traffic) and `engine::conn` (a body per request).

use crate::error::{invalid, BadValue, ConfigError};
use crate::tokens::{request_text, Tokenizer};
use crate::units::TokenCount;
use bytes::Bytes;
use std::borrow::Cow;
use std::path::Path;

/// `--api`: which request body an LLM run sends (and, in `cli`, which events are tokens).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Api {
    /// OpenAI chat completions (`/v1/chat/completions`): `messages`.
    #[default]
    OpenAiChat,
    /// OpenAI completions (`/v1/completions`): `prompt` as text.
    OpenAiCompletions,
    /// OpenAI Responses (`/v1/responses`): `input`, `max_output_tokens`.
    OpenAiResponses,
    /// Anthropic messages (`/v1/messages`): `messages` (system ones as `system`),
    /// `max_tokens` always.
    AnthropicMessages,
}

/// Anthropic needs `max_tokens`; without `--output-tokens` or a prompt's own, this.
pub const ANTHROPIC_MAX_TOKENS: u64 = 1024;

impl Api {
    /// Every name, as `--api` takes them.
    pub const NAMES: [&'static str; 4] = [
        "openai-chat",
        "openai-completions",
        "openai-responses",
        "anthropic-messages",
    ];

    /// Parses `--api`.
    pub fn parse(s: &str) -> Result<Api, BadValue> {
        match s.trim() {
            "openai-chat" => Ok(Api::OpenAiChat),
            "openai-completions" => Ok(Api::OpenAiCompletions),
            "openai-responses" => Ok(Api::OpenAiResponses),
            "anthropic-messages" => Ok(Api::AnthropicMessages),
            _ => Err(format!("unknown API: use one of {}", Api::NAMES.join(", ")).into()),
        }
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Api::OpenAiChat => Api::NAMES[0],
            Api::OpenAiCompletions => Api::NAMES[1],
            Api::OpenAiResponses => Api::NAMES[2],
            Api::AnthropicMessages => Api::NAMES[3],
        }
    }

    /// The path its servers answer on.
    pub fn path(self) -> &'static str {
        match self {
            Api::OpenAiChat => "/v1/chat/completions",
            Api::OpenAiCompletions => "/v1/completions",
            Api::OpenAiResponses => "/v1/responses",
            Api::AnthropicMessages => "/v1/messages",
        }
    }

    /// Whether it takes `min_tokens` and `ignore_eos` (vLLM, SGLang and TGI do on the
    /// OpenAI chat and completions endpoints).
    pub fn exact_output(self) -> bool {
        matches!(self, Api::OpenAiChat | Api::OpenAiCompletions)
    }
}

/// `--prompts`/`--input-tokens` with `--model`: one kind of request per model.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompts {
    /// The request body's shape.
    pub api: Api,
    /// Where each prompt comes from.
    pub source: PromptSource,
    /// Models and their weights.
    pub models: Vec<(String, u64)>,
    /// `"stream": true` (unless `--no-stream`), with usage asked for in the last chunk.
    pub stream: bool,
    /// `--output-tokens`: each request's `max_tokens` (over a file's).
    pub output: Option<TokenCount>,
    /// `--exact-output`: also `min_tokens` = `max_tokens` and `ignore_eos`, so every answer
    /// is that long on servers that honour them (vLLM, SGLang, TGI).
    pub exact_output: bool,
}

/// Where the prompts come from.
#[derive(Debug, Clone, PartialEq)]
pub enum PromptSource {
    /// `--prompts FILE`: taken in turn.
    File(Vec<FilePrompt>),
    /// `--input-tokens`: made per request.
    Synthetic(Synthetic),
}

/// A prompt read from a file.
#[derive(Debug, Clone, PartialEq)]
pub struct FilePrompt {
    /// Its `"messages":[…]` JSON.
    pub messages: String,
    /// Its text as the tokenizer sees it (a completions request's `prompt`).
    pub text: String,
    /// Its `max_tokens`, if it gave one (ShareGPT: the reference answer's tokens).
    pub max_tokens: Option<u64>,
    /// Its tokens by the run's tokenizer (None: `--tokenizer none`).
    pub tokens: Option<u64>,
}

/// Prompts made to a length.
#[derive(Debug, Clone, PartialEq)]
pub struct Synthetic {
    /// Each prompt's own tokens.
    pub input: TokenCount,
    /// How many tokens every prompt starts with, the same for all (`--shared-prefix-tokens`;
    /// drawn from the seed).
    pub prefix_tokens: u64,
    /// Words that are one token each (with their leading space) by the run's tokenizer.
    pub words: Vec<&'static str>,
}

/// What request k asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Ask<'a> {
    /// Its prompt as the messages JSON (a file's, borrowed: no copy per request).
    pub messages: Cow<'a, str>,
    /// Its prompt as text.
    pub text: Cow<'a, str>,
    /// Its prompt's tokens by the run's tokenizer, where known.
    pub input_tokens: Option<u64>,
    /// Its `max_tokens`.
    pub max_tokens: Option<u64>,
}

/// Common words; those that are one token with a leading space by a tokenizer make its
/// synthetic prompts (the most tokenizers keep nearly all of them).
const CANDIDATES: &str = " the of and to in is it for on that with as was at by be this are from \
or have an they which one you had not but what all were when we there can out other if do \
will each about how up them then she many some so these would make like him into time has \
look two more write go see number no way could people my than first water been call who its \
now find long down day did get come made may part over new sound take only little work know \
place year live me back give most very after thing our just name good sentence man think say \
great where help through much before line right too mean old any same tell boy follow came \
want show also around form three small set put end does another well large must big even such \
because turn here why ask went men read need land different home us move try kind hand picture \
again change off play spell air away animal house point page letter mother answer found study \
still learn should world high every near add food between own below country plant last school \
father keep tree never start city earth eye light thought head under story saw left few while \
along might close something seem next hard open example begin life always those both paper \
together got group often run important until children side feet car mile night walk white sea \
began grow took river four carry state once book hear stop without second later miss idea \
enough eat face watch far real almost let above girl sometimes mountain cut young talk soon \
list song being leave family body music color stand sun question fish area mark dog horse \
birds problem complete room knew since ever piece told usually friends easy heard order red \
door sure become top ship across today during short better best however low hours black \
products happened whole measure remember early waves reached";

/// The words of `CANDIDATES` that are one token each, with their leading space, by `t`.
pub fn one_token_words(t: &Tokenizer) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for w in CANDIDATES.split_whitespace() {
        // (" word" as a &'static str: CANDIDATES holds each word after a space or newline.)
        let start = w.as_ptr() as usize - CANDIDATES.as_ptr() as usize;
        let spaced = &CANDIDATES[start.saturating_sub(1)..start + w.len()];
        if spaced.starts_with(' ') && t.count(spaced) == 1 && !out.contains(&spaced) {
            out.push(spaced);
        }
    }
    out
}

/// SplitMix64: the random bits of (seed, request, position).
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Streams of random bits kept apart: a prompt's length, its words, its max_tokens.
const LENGTH: u64 = 0x1e57;
const WORDS: u64 = 0x3a0d;
const OUTPUT: u64 = 0x0c7a;
/// The request number that stands for the shared prefix.
const PREFIX: u64 = u64::MAX;

impl Synthetic {
    /// Prompts of `input` tokens (after `prefix_tokens` shared ones) by `t`.
    pub fn new(input: TokenCount, prefix_tokens: u64, t: &Tokenizer) -> Result<Synthetic, String> {
        let words = one_token_words(t);
        if words.len() < 64 {
            return Err(format!(
                "the tokenizer {} has only {} one-token words of ours to build prompts from",
                t.name(),
                words.len()
            ));
        }
        Ok(Synthetic {
            input,
            prefix_tokens,
            words,
        })
    }

    /// Appends `n` words for request `k`.
    fn push_words(&self, out: &mut String, seed: u64, k: u64, n: u64) {
        let base = mix(seed ^ mix(k ^ WORDS));
        for i in 0..n {
            let w = self.words[(mix(base ^ i) % self.words.len() as u64) as usize];
            out.push_str(w);
        }
    }

    /// Request k's own tokens (after the prefix).
    fn own_tokens(&self, seed: u64, k: u64) -> u64 {
        self.input.draw(mix(seed ^ mix(k ^ LENGTH)))
    }

    /// Request k's prompt text.
    pub fn text(&self, seed: u64, k: u64) -> String {
        let n = self.own_tokens(seed, k);
        let mut text = String::with_capacity(8 * (self.prefix_tokens + n) as usize);
        self.push_words(&mut text, seed, PREFIX, self.prefix_tokens);
        self.push_words(&mut text, seed, k, n);
        text
    }
}

impl Prompts {
    /// What request k asks for, with the run's `seed`.
    pub fn ask(&self, seed: u64, k: u64) -> Ask<'_> {
        let drawn = self.output.map(|o| o.draw(mix(seed ^ mix(k ^ OUTPUT))));
        match &self.source {
            PromptSource::File(ps) => {
                let p = &ps[(k % ps.len() as u64) as usize];
                Ask {
                    messages: Cow::Borrowed(&p.messages),
                    text: Cow::Borrowed(&p.text),
                    input_tokens: p.tokens,
                    max_tokens: drawn.or(p.max_tokens),
                }
            }
            PromptSource::Synthetic(s) => {
                let text = s.text(seed, k);
                Ask {
                    messages: Cow::Owned(
                        serde_json::json!([{"role": "user", "content": text}]).to_string(),
                    ),
                    text: Cow::Owned(text),
                    input_tokens: Some(s.prefix_tokens + s.own_tokens(seed, k)),
                    max_tokens: drawn,
                }
            }
        }
    }

    /// Request k's input tokens by the run's tokenizer, where known.
    pub fn input_tokens(&self, seed: u64, k: u64) -> Option<u64> {
        match &self.source {
            PromptSource::File(ps) => ps[(k % ps.len() as u64) as usize].tokens,
            PromptSource::Synthetic(s) => Some(s.prefix_tokens + s.own_tokens(seed, k)),
        }
    }

    /// The body of request k for `model`, in the run's API.
    pub fn body(&self, seed: u64, k: u64, model: &str) -> Bytes {
        let ask = self.ask(seed, k);
        let model = serde_json::to_string(model).unwrap_or_else(|_| "\"\"".into());
        let text = || serde_json::to_string(&ask.text).unwrap_or_else(|_| "\"\"".into());
        let mut b = format!("{{\"model\":{model}");
        let max = match self.api {
            Api::OpenAiChat => {
                b.push_str(&format!(",\"messages\":{}", ask.messages));
                ask.max_tokens.map(|m| format!(",\"max_tokens\":{m}"))
            }
            Api::OpenAiCompletions => {
                b.push_str(&format!(",\"prompt\":{}", text()));
                ask.max_tokens.map(|m| format!(",\"max_tokens\":{m}"))
            }
            Api::OpenAiResponses => {
                b.push_str(&format!(",\"input\":{}", ask.messages));
                ask.max_tokens
                    .map(|m| format!(",\"max_output_tokens\":{m}"))
            }
            Api::AnthropicMessages => {
                let (system, messages) = anthropic_messages(&ask.messages);
                if let Some(sys) = system {
                    b.push_str(&format!(",\"system\":{sys}"));
                }
                b.push_str(&format!(",\"messages\":{messages}"));
                let m = ask.max_tokens.unwrap_or(ANTHROPIC_MAX_TOKENS);
                Some(format!(",\"max_tokens\":{m}"))
            }
        };
        if let Some(max) = max {
            b.push_str(&max);
            if let (true, Some(m)) = (self.exact_output, ask.max_tokens) {
                b.push_str(&format!(",\"min_tokens\":{m},\"ignore_eos\":true"));
            }
        }
        match (self.stream, self.api) {
            (true, Api::OpenAiChat | Api::OpenAiCompletions) => {
                b.push_str(",\"stream\":true,\"stream_options\":{\"include_usage\":true}")
            }
            (true, _) => b.push_str(",\"stream\":true"),
            (false, _) => b.push_str(",\"stream\":false"),
        }
        b.push('}');
        Bytes::from(b)
    }
}

/// Anthropic takes system prompts apart from the messages: a messages JSON array with
/// `"role": "system"` entries becomes the `system` text (JSON) and the other messages.
fn anthropic_messages(messages: &str) -> (Option<String>, String) {
    if !messages.contains("\"system\"") {
        return (None, messages.to_string());
    }
    let Ok(serde_json::Value::Array(all)) = serde_json::from_str(messages) else {
        return (None, messages.to_string());
    };
    let (system, rest): (Vec<_>, Vec<_>) = all
        .into_iter()
        .partition(|m| m.get("role").and_then(|r| r.as_str()) == Some("system"));
    let text: Vec<String> = system
        .iter()
        .map(|m| request_text(&serde_json::json!({"messages": [m]})))
        .collect();
    (
        Some(serde_json::Value::from(text.join("\n")).to_string()),
        serde_json::Value::Array(rest).to_string(),
    )
}

/// Reads `--prompts FILE`: JSONL (each line `{"prompt": "…"}` or `{"messages": [...]}`, with
/// an optional `max_tokens`) or a ShareGPT dataset (a JSON list of `{"conversations":
/// [{"from": "human", "value": …}, {"from": "gpt", "value": …}, …]}`: the first human turn is
/// the prompt and the answer after it, counted by `tokenizer`, its `max_tokens`, as vLLM's
/// benchmark does). At most `limit` prompts are kept (a run uses no more than it sends).
pub fn read_prompts(
    path: &Path,
    tokenizer: Option<&Tokenizer>,
    limit: usize,
) -> Result<Vec<FilePrompt>, ConfigError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| invalid("--prompts", &name, format!("cannot read it: {e}")))?;
    let mut out = if text.trim_start().starts_with('[') {
        read_sharegpt(&text, &name, tokenizer, limit)?
    } else {
        read_jsonl(&text, &name, limit)?
    };
    if out.is_empty() {
        return Err(invalid("--prompts", &name, "no prompts in the file"));
    }
    for p in &mut out {
        let v: serde_json::Value =
            serde_json::from_str(&format!("{{\"messages\":{}}}", p.messages))
                .expect("messages we wrote are JSON");
        p.text = request_text(&v);
        p.tokens = tokenizer.map(|t| t.count(&p.text));
    }
    Ok(out)
}

fn read_jsonl(text: &str, name: &str, limit: usize) -> Result<Vec<FilePrompt>, ConfigError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if out.len() >= limit {
            break;
        }
        let here = format!("{name}:{}", i + 1);
        let bad = |why: String| invalid("--prompts", &here, why);
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        let max_tokens = match v.get("max_tokens") {
            None => None,
            Some(m) => Some(
                m.as_u64()
                    .ok_or_else(|| bad("max_tokens must be a whole number".into()))?,
            ),
        };
        let messages = match (v.get("prompt"), v.get("messages")) {
            (Some(p), None) => {
                let p = p
                    .as_str()
                    .ok_or_else(|| bad("prompt must be a string".into()))?;
                serde_json::json!([{"role": "user", "content": p}]).to_string()
            }
            (None, Some(m)) if m.as_array().is_some_and(|a| !a.is_empty()) => m.to_string(),
            (None, Some(_)) => return Err(bad("messages must be a non-empty array".into())),
            _ => {
                return Err(bad(
                    "expected {\"prompt\": \"…\"} or {\"messages\": [...]}, with an optional \
                     max_tokens (or a ShareGPT JSON list)"
                        .into(),
                ))
            }
        };
        out.push(FilePrompt {
            messages,
            text: String::new(),
            max_tokens,
            tokens: None,
        });
    }
    Ok(out)
}

/// ShareGPT: conversations without a human turn followed by an answer are skipped (and
/// counted on standard error).
fn read_sharegpt(
    text: &str,
    name: &str,
    tokenizer: Option<&Tokenizer>,
    limit: usize,
) -> Result<Vec<FilePrompt>, ConfigError> {
    #[derive(serde::Deserialize)]
    struct Turn {
        from: String,
        value: String,
    }
    #[derive(serde::Deserialize)]
    struct Conversation {
        #[serde(default)]
        conversations: Vec<Turn>,
    }
    let all: Vec<Conversation> = serde_json::from_str(text).map_err(|e| {
        invalid(
            "--prompts",
            name,
            format!("not a ShareGPT list of {{\"conversations\": [{{\"from\", \"value\"}}]}}: {e}"),
        )
    })?;
    let human = |t: &Turn| t.from == "human" || t.from == "user";
    let (mut out, mut skipped) = (Vec::new(), 0usize);
    for c in &all {
        if out.len() >= limit {
            break;
        }
        let turns = &c.conversations;
        let Some(i) = turns.iter().position(human) else {
            skipped += 1;
            continue;
        };
        let Some(answer) = turns.get(i + 1).filter(|t| !human(t)) else {
            skipped += 1;
            continue;
        };
        out.push(FilePrompt {
            messages: serde_json::json!([{"role": "user", "content": turns[i].value}]).to_string(),
            text: String::new(),
            max_tokens: tokenizer.map(|t| t.count(&answer.value).max(1)),
            tokens: None,
        });
    }
    if skipped > 0 {
        eprintln!(
            "ratebench: {name}: {} ShareGPT conversations used, {skipped} skipped (no human turn \
             followed by an answer)",
            out.len()
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(messages: &str, max_tokens: Option<u64>) -> PromptSource {
        PromptSource::File(vec![FilePrompt {
            messages: messages.into(),
            text: "hi".into(),
            max_tokens,
            tokens: Some(1),
        }])
    }

    #[test]
    fn prompt_bodies() {
        let mut p = Prompts {
            api: Api::OpenAiChat,
            source: file("[{\"role\":\"user\",\"content\":\"hi\"}]", Some(5)),
            models: vec![("m".into(), 1)],
            stream: true,
            output: None,
            exact_output: false,
        };
        let v: serde_json::Value = serde_json::from_slice(&p.body(0, 7, "m")).unwrap();
        assert_eq!(v["model"], "m");
        assert_eq!(v["max_tokens"], 5);
        assert_eq!(v["stream"], true);
        assert!(v.get("min_tokens").is_none());
        // --output-tokens overrides the file's; --exact-output asks for exactly that many.
        p.output = Some(TokenCount::Fixed(128));
        p.exact_output = true;
        let v: serde_json::Value = serde_json::from_slice(&p.body(0, 7, "m")).unwrap();
        assert_eq!(
            (&v["max_tokens"], &v["min_tokens"], &v["ignore_eos"]),
            (&128.into(), &128.into(), &true.into())
        );
    }

    #[test]
    fn each_api_gets_its_own_body() {
        let body = |api: Api, messages: &str, max: Option<u64>| {
            let p = Prompts {
                api,
                source: file(messages, max),
                models: vec![("m".into(), 1)],
                stream: true,
                output: None,
                exact_output: false,
            };
            serde_json::from_slice::<serde_json::Value>(&p.body(0, 0, "m")).unwrap()
        };
        let user = r#"[{"role":"user","content":"hi"}]"#;
        let v = body(Api::OpenAiCompletions, user, Some(5));
        assert_eq!((&v["prompt"], &v["max_tokens"]), (&"hi".into(), &5.into()));
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert!(v.get("messages").is_none());
        let v = body(Api::OpenAiResponses, user, Some(5));
        assert_eq!(v["input"][0]["content"], "hi");
        assert_eq!(v["max_output_tokens"], 5);
        assert!(v.get("max_tokens").is_none() && v.get("stream_options").is_none());
        // Anthropic: system messages travel apart; max_tokens is required.
        let with_system =
            r#"[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}]"#;
        let v = body(Api::AnthropicMessages, with_system, None);
        assert_eq!(v["system"], "be brief");
        assert_eq!(v["messages"].as_array().unwrap().len(), 1);
        assert_eq!(v["max_tokens"], ANTHROPIC_MAX_TOKENS);
        assert_eq!(v["stream"], true);
    }

    #[test]
    fn synthetic_prompts_are_exactly_as_long_as_asked_by_every_tokenizer() {
        for name in crate::tokens::names() {
            let t = Tokenizer::named(name).unwrap();
            let s = Synthetic::new(TokenCount::Uniform(1, 700), 32, &t).unwrap();
            let mut prefix = String::new();
            s.push_words(&mut prefix, 42, PREFIX, 32);
            assert_eq!(t.count(&prefix), 32, "{name}: prefix");
            for k in 0..40 {
                let text = s.text(42, k);
                let want = 32 + s.own_tokens(42, k);
                assert_eq!(t.count(&text), want, "{name}: prompt {k}");
                assert!(text.starts_with(&prefix), "one prefix for all");
            }
        }
    }

    #[test]
    fn synthetic_prompts_differ_per_request_and_repeat_per_seed() {
        let t = Tokenizer::default();
        let s = Synthetic::new(TokenCount::Fixed(16), 0, &t).unwrap();
        let texts: Vec<String> = (0..1000).map(|k| s.text(7, k)).collect();
        let mut unique = texts.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 1000, "every request its own prompt");
        assert_eq!(s.text(7, 3), texts[3], "the same seed, the same prompt");
        assert_ne!(s.text(8, 3), texts[3], "another seed, another prompt");
    }

    #[test]
    fn sharegpt_first_human_turn_and_the_answers_tokens() {
        let text = r#"[
          {"id": "a", "conversations": [
            {"from": "human", "value": "What is the capital of France?"},
            {"from": "gpt", "value": "tiktoken is great!"},
            {"from": "human", "value": "And of Italy?"}]},
          {"id": "b", "conversations": [{"from": "gpt", "value": "no question"}]},
          {"id": "c", "conversations": [{"from": "human", "value": "hello world"},
                                        {"from": "gpt", "value": "hello world"}]}
        ]"#;
        let t = Tokenizer::named("cl100k_base").unwrap();
        let ps = read_sharegpt(text, "s.json", Some(&t), 100).unwrap();
        assert_eq!(ps.len(), 2);
        // OpenAI's cookbook: "tiktoken is great!" is 6 tokens in cl100k_base.
        assert_eq!(ps[0].max_tokens, Some(6));
        assert!(ps[0].messages.contains("capital of France"));
        assert_eq!(ps[1].max_tokens, Some(2));
        assert_eq!(read_sharegpt(text, "s.json", Some(&t), 1).unwrap().len(), 1);
        assert!(read_sharegpt("[{\"conversations\": 3}]", "s", None, 9).is_err());
    }
}
