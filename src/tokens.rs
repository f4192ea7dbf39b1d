//! Counting tokens as a model does: the BPE tokenizers of the common model families,
//! bundled in the binary (the `tiktoken` crate: pure Rust, its vocabularies compressed and
//! embedded at build time — nothing is fetched at run time).
//!
//! `Tokenizer::named("o200k_base")` (the default: GPT-4o and later), `cl100k_base`,
//! `llama3`, `qwen2`, `deepseek_v3`, `mistral_v3`, … — `names()` lists them.
//!
//! Used by `serve` (a prompt's `usage.prompt_tokens`), `prompts` (sizing them) and `cli`
//! (validating `--tokenizer`).

use crate::error::BadValue;

/// The tokenizer used when none is named: OpenAI's o200k_base (GPT-4o, GPT-4.1, o-series).
pub const DEFAULT: &str = "o200k_base";

/// A bundled tokenizer.
#[derive(Clone, Copy)]
pub struct Tokenizer {
    name: &'static str,
    bpe: &'static tiktoken::CoreBpe,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokenizer({})", self.name)
    }
}

impl PartialEq for Tokenizer {
    fn eq(&self, other: &Tokenizer) -> bool {
        self.name == other.name
    }
}

impl Eq for Tokenizer {}

impl Default for Tokenizer {
    /// `DEFAULT`, which every build carries.
    fn default() -> Tokenizer {
        Tokenizer::named(DEFAULT).expect("o200k_base is bundled")
    }
}

/// Every tokenizer name this build carries.
pub fn names() -> &'static [&'static str] {
    tiktoken::list_encodings()
}

impl Tokenizer {
    /// The tokenizer called `name`, or what the user can name instead.
    pub fn named(name: &str) -> Result<Tokenizer, BadValue> {
        let name = name.trim();
        let known = names().iter().find(|n| **n == name).copied();
        match known.and_then(|n| tiktoken::get_encoding(n).map(|b| (n, b))) {
            Some((name, bpe)) => Ok(Tokenizer { name, bpe }),
            None => Err(format!("unknown tokenizer: use one of {}", names().join(", ")).into()),
        }
    }

    /// Its name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// How many tokens `text` is (special-token text counted as ordinary text, as an API
    /// does with a user's prompt).
    pub fn count(&self, text: &str) -> u64 {
        self.bpe.count(text) as u64
    }
}

/// The prompt as the tokenizer sees it: an Anthropic `system` prompt, every message's text
/// (a string, or the `text` of each part of an array), a completions request's `prompt` (a
/// string or strings) and a Responses request's `input` (a string, or messages as above),
/// joined by newlines — no chat template around it, as vLLM's benchmark counts a prompt.
pub fn request_text(json: &serde_json::Value) -> String {
    fn text_of(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::String(s) => out.push(s.clone()),
            serde_json::Value::Array(parts) => {
                for p in parts {
                    match (p.as_str(), p.get("text"), p.get("content")) {
                        (Some(s), _, _) => out.push(s.to_string()),
                        (None, Some(t), _) => text_of(t, out),
                        // A message in a list (Responses `input`).
                        (None, None, Some(c)) => text_of(c, out),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let mut texts = Vec::new();
    if let Some(s) = json.get("system") {
        text_of(s, &mut texts);
    }
    for m in json
        .get("messages")
        .and_then(|m| m.as_array())
        .into_iter()
        .flatten()
    {
        if let Some(c) = m.get("content") {
            text_of(c, &mut texts);
        }
    }
    for key in ["prompt", "input"] {
        if let Some(p) = json.get(key) {
            text_of(p, &mut texts);
        }
    }
    texts.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prompt_of_every_api_is_its_text_without_a_template() {
        let chat = serde_json::json!({"messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hello world"}]}]});
        assert_eq!(request_text(&chat), "be brief\nhello world");
        let completions = serde_json::json!({"prompt": "hello world"});
        assert_eq!(request_text(&completions), "hello world");
        let responses = serde_json::json!({"input": [{"role": "user", "content": [
            {"type": "input_text", "text": "hello world"}]}]});
        assert_eq!(request_text(&responses), "hello world");
        assert_eq!(request_text(&serde_json::json!({"input": "hi"})), "hi");
        let anthropic = serde_json::json!({"system": "be brief",
            "messages": [{"role": "user", "content": "hello world"}]});
        assert_eq!(request_text(&anthropic), "be brief\nhello world");
    }

    #[test]
    fn counts_match_the_published_examples() {
        // OpenAI's cookbook ("How to count tokens with tiktoken"): "tiktoken is great!" is
        // six tokens in cl100k_base; "hello world" is two in both OpenAI encodings.
        let cl = Tokenizer::named("cl100k_base").unwrap();
        assert_eq!(cl.count("tiktoken is great!"), 6);
        assert_eq!(cl.count("hello world"), 2);
        let o = Tokenizer::named(DEFAULT).unwrap();
        assert_eq!(o.count("hello world"), 2);
        assert_eq!(o.count(""), 0);
        assert_eq!(o.name(), "o200k_base");
        for n in ["llama3", "qwen2", "deepseek_v3", "mistral_v3"] {
            assert!(
                Tokenizer::named(n).unwrap().count("hello world") >= 1,
                "{n}"
            );
        }
    }

    #[test]
    fn an_unknown_name_lists_the_known_ones() {
        let e = Tokenizer::named("gpt5_base").unwrap_err().to_string();
        assert!(e.contains("o200k_base") && e.contains("llama3"), "{e}");
    }
}
