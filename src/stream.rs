//! Server-Sent Events, parsed as they arrive: time to first token, inter-token gaps and
//! token counts for streamed LLM responses (`text/event-stream`).
//!
//! `SseParser` takes body chunks of any size (an event may straddle chunks, a chunk may hold
//! many events) and yields each event's `data` without buffering the whole body. `TokenRule`
//! decides whether an event carries generated content — by default OpenAI's chat and
//! completions chunks (`choices[].delta.content`, `choices[].delta.tool_calls[].function
//! .arguments`, `choices[].text`) — and reads the final `usage.completion_tokens`.
//!
//! Used by `engine::exchange` (per response), `record` (goodput targets) and tests.

use crate::error::BadValue;
use crate::tokens::Tokenizer;
use crate::units::parse_duration;
use serde::Deserialize;

/// What one `data:` event said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Carries generated content (a token, or several).
    Content,
    /// Carries no content (a role header, a keep-alive, a finish reason).
    Empty,
    /// `[DONE]`: the stream's end marker.
    Done,
    /// Not valid for the rule (e.g. not JSON when the rule reads JSON fields).
    Malformed,
}

impl Event {
    fn content_if(content: bool) -> Event {
        if content {
            Event::Content
        } else {
            Event::Empty
        }
    }
}

/// Which events count as generated content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenRule {
    /// OpenAI-compatible chat and completions chunks.
    OpenAi,
    /// OpenAI's Responses API: `response.output_text.delta` (and refusal and function-call
    /// argument deltas) carry content; usage comes in `response.completed`.
    Responses,
    /// Anthropic's messages: `content_block_delta` (`delta.text`, or a tool's
    /// `delta.partial_json`) carries content; input tokens come in `message_start`, output
    /// tokens in `message_delta`.
    Anthropic,
    /// Any `data:` event other than `[DONE]` (for APIs that stream plain text).
    AnyData,
    /// A JSON path with `*` for "every array element", e.g. `choices.*.delta.content`;
    /// an event counts when any value there is a non-empty string.
    Path(Vec<String>),
}

impl TokenRule {
    /// Parses `--sse-token`: `openai`, `responses`, `anthropic`, `any`, or a dotted JSON
    /// path with `*`.
    pub fn parse(s: &str) -> Result<TokenRule, BadValue> {
        match s.trim() {
            "openai" => Ok(TokenRule::OpenAi),
            "responses" => Ok(TokenRule::Responses),
            "anthropic" => Ok(TokenRule::Anthropic),
            "any" => Ok(TokenRule::AnyData),
            "" => Err(
                "empty rule: use openai, any, or a JSON path like choices.*.delta.content".into(),
            ),
            p => {
                let parts: Vec<String> = p.split('.').map(String::from).collect();
                if parts.iter().any(String::is_empty) {
                    return Err(
                        format!("{p:?}: empty path segment; e.g. choices.*.delta.content").into(),
                    );
                }
                Ok(TokenRule::Path(parts))
            }
        }
    }

    /// Classifies one event's data, and reads `usage.completion_tokens` if present.
    pub fn classify(&self, data: &[u8]) -> (Event, Option<u64>) {
        let (event, usage, _) = self.classify_usage(data);
        (event, usage)
    }

    /// `classify`, also reading `usage.prompt_tokens` (input tokens, for cost).
    pub fn classify_usage(&self, data: &[u8]) -> (Event, Option<u64>, Option<u64>) {
        let c = self.classify_counted(data, None);
        (c.event, c.usage, c.prompt)
    }

    /// `classify_usage`, and with a tokenizer, how many tokens the event's content text is
    /// (each text the rule reads, counted on its own: a server streams whole tokens, so
    /// the sum over a stream is the answer's count — to within a token where a server splits
    /// one across events).
    pub fn classify_counted(&self, data: &[u8], tokenizer: Option<&Tokenizer>) -> Classified {
        let trimmed = data.trim_ascii();
        let mut out = Classified {
            event: Event::Empty,
            usage: None,
            prompt: None,
            tokens: 0,
        };
        if trimmed == b"[DONE]" {
            out.event = Event::Done;
            return out;
        }
        let mut count = |t: &str| {
            if let Some(tk) = tokenizer {
                out.tokens += tk.count(t);
            }
        };
        match self {
            TokenRule::AnyData => {
                if !trimmed.is_empty() {
                    count(&String::from_utf8_lossy(trimmed));
                    out.event = Event::Content;
                }
            }
            TokenRule::OpenAi => match serde_json::from_slice::<Chunk>(trimmed) {
                Ok(c) => {
                    let mut content = false;
                    for ch in &c.choices {
                        let delta = ch.delta.as_ref();
                        let texts = ch
                            .text
                            .iter()
                            .chain(delta.and_then(|d| d.content.as_ref()))
                            .chain(delta.into_iter().flat_map(|d| {
                                d.tool_calls
                                    .iter()
                                    .filter_map(|tc| tc.function.as_ref()?.arguments.as_ref())
                            }));
                        for t in texts.filter(|t| !t.is_empty()) {
                            content = true;
                            count(t);
                        }
                    }
                    let (usage, prompt) = c
                        .usage
                        .map_or((None, None), |u| (u.completion_tokens, u.prompt_tokens));
                    out.event = Event::content_if(content);
                    out.usage = usage;
                    out.prompt = prompt;
                }
                Err(_) => out.event = Event::Malformed,
            },
            TokenRule::Responses | TokenRule::Anthropic => {
                match serde_json::from_slice::<Typed>(trimmed) {
                    Ok(t) => {
                        let responses = *self == TokenRule::Responses;
                        let texts = t.content(responses);
                        let content = texts.iter().any(|x| !x.is_empty());
                        for x in texts.iter().filter(|x| !x.is_empty()) {
                            count(x);
                        }
                        let (usage, prompt) = t.usage(responses);
                        out.event = Event::content_if(content);
                        out.usage = usage;
                        out.prompt = prompt;
                    }
                    Err(_) => out.event = Event::Malformed,
                }
            }
            TokenRule::Path(path) => match serde_json::from_slice::<serde_json::Value>(trimmed) {
                Ok(v) => {
                    out.usage = v
                        .pointer("/usage/completion_tokens")
                        .and_then(|u| u.as_u64());
                    out.prompt = v.pointer("/usage/prompt_tokens").and_then(|u| u.as_u64());
                    let mut content = false;
                    strings_at(&v, path, &mut |t| {
                        content = true;
                        count(t);
                    });
                    out.event = Event::content_if(content);
                }
                Err(_) => out.event = Event::Malformed,
            },
        }
        out
    }
}

/// One event, classified (`TokenRule::classify_counted`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classified {
    /// What kind of event it is.
    pub event: Event,
    /// `usage.completion_tokens`, if it carried one.
    pub usage: Option<u64>,
    /// `usage.prompt_tokens`, if it carried one.
    pub prompt: Option<u64>,
    /// Its content text's tokens by the tokenizer (0 without one).
    pub tokens: u64,
}

/// Calls `f` with every non-empty string at `path` (`*`: every array element).
fn strings_at(v: &serde_json::Value, path: &[String], f: &mut impl FnMut(&str)) {
    match path.split_first() {
        None => {
            if let Some(s) = v.as_str().filter(|s| !s.is_empty()) {
                f(s)
            }
        }
        Some((head, rest)) if head == "*" => {
            for x in v.as_array().into_iter().flatten() {
                strings_at(x, rest, f);
            }
        }
        Some((head, rest)) => {
            if let Some(x) = v.get(head.as_str()) {
                strings_at(x, rest, f);
            }
        }
    }
}

// The subset of an OpenAI chunk that matters; serde skips everything else without
// allocating for it.
#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(default, borrow)]
    choices: Vec<Choice<'a>>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(default, borrow)]
    delta: Option<Delta<'a>>,
    #[serde(default, borrow)]
    text: Option<std::borrow::Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(default, borrow)]
    content: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    tool_calls: Vec<ToolCall<'a>>,
}

#[derive(Deserialize)]
struct ToolCall<'a> {
    #[serde(default, borrow)]
    function: Option<Function<'a>>,
}

#[derive(Deserialize)]
struct Function<'a> {
    #[serde(default, borrow)]
    arguments: Option<std::borrow::Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Usage {
    completion_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens: Option<u64>,
}

// The subset of a Responses or Anthropic event that matters: its `type`, a delta (a string
// for Responses, an object for Anthropic), and usage where it travels.
#[derive(Deserialize)]
struct Typed<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    delta: Option<TypedDelta<'a>>,
    #[serde(default)]
    usage: Option<NamedUsage>,
    #[serde(default)]
    response: Option<WithUsage>,
    #[serde(default)]
    message: Option<WithUsage>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum TypedDelta<'a> {
    Text(#[serde(borrow)] std::borrow::Cow<'a, str>),
    Block {
        #[serde(default, borrow)]
        text: Option<std::borrow::Cow<'a, str>>,
        #[serde(default, borrow)]
        partial_json: Option<std::borrow::Cow<'a, str>>,
    },
}

#[derive(Deserialize)]
struct WithUsage {
    #[serde(default)]
    usage: Option<NamedUsage>,
}

#[derive(Deserialize)]
struct NamedUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
}

impl Typed<'_> {
    /// The output text the event carries.
    fn content(&self, responses: bool) -> Vec<&str> {
        let delta = self.delta.as_ref();
        let kind = self.kind.as_ref();
        match (responses, delta) {
            (true, Some(TypedDelta::Text(t)))
                if matches!(
                    kind,
                    "response.output_text.delta"
                        | "response.refusal.delta"
                        | "response.function_call_arguments.delta"
                ) =>
            {
                vec![t.as_ref()]
            }
            (false, Some(TypedDelta::Block { text, partial_json }))
                if kind == "content_block_delta" =>
            {
                text.iter()
                    .chain(partial_json)
                    .map(|t| t.as_ref())
                    .collect()
            }
            _ => Vec::new(),
        }
    }

    /// Output and input tokens, where the event says them (Anthropic's `message_start`
    /// says a placeholder output count, not the answer's: only its input is read).
    fn usage(&self, responses: bool) -> (Option<u64>, Option<u64>) {
        let named = |u: &NamedUsage| (u.output_tokens, u.input_tokens);
        if responses {
            return match (self.kind.as_ref(), &self.response) {
                ("response.completed" | "response.incomplete", Some(r)) => {
                    r.usage.as_ref().map_or((None, None), named)
                }
                _ => (None, None),
            };
        }
        match self.kind.as_ref() {
            "message_start" => (
                None,
                self.message
                    .as_ref()
                    .and_then(|m| m.usage.as_ref())
                    .and_then(|u| u.input_tokens),
            ),
            "message_delta" => self.usage.as_ref().map_or((None, None), named),
            _ => (None, None),
        }
    }
}

/// An incremental SSE parser: feed it body chunks, it hands back complete events' data.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of an unfinished line.
    line: Vec<u8>,
    /// The current event's data lines, joined with `\n`.
    data: Vec<u8>,
    has_data: bool,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> SseParser {
        SseParser::default()
    }

    /// Feeds `chunk`; calls `on_event` with each event's data as it completes.
    pub fn feed(&mut self, chunk: &[u8], mut on_event: impl FnMut(&[u8])) {
        let mut rest = chunk;
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            let (head, tail) = rest.split_at(nl);
            rest = &tail[1..];
            if self.line.is_empty() {
                self.take_line(head, &mut on_event);
            } else {
                self.line.extend_from_slice(head);
                let line = std::mem::take(&mut self.line);
                self.take_line(&line, &mut on_event);
                self.line = line;
                self.line.clear();
            }
        }
        self.line.extend_from_slice(rest);
    }

    /// Ends the stream: an event not closed by a blank line is dispatched, as browsers do
    /// not, but servers that close right after their last event expect.
    pub fn finish(&mut self, mut on_event: impl FnMut(&[u8])) {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.take_line(&line, &mut on_event);
        }
        self.dispatch(&mut on_event);
    }

    fn take_line(&mut self, line: &[u8], on_event: &mut impl FnMut(&[u8])) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            self.dispatch(on_event);
            return;
        }
        if let Some(value) = line.strip_prefix(b"data:") {
            let value = value.strip_prefix(b" ").unwrap_or(value);
            if self.has_data {
                self.data.push(b'\n');
            }
            self.data.extend_from_slice(value);
            self.has_data = true;
        }
        // `event:`, `id:`, `retry:` and `:` comments do not carry tokens.
    }

    fn dispatch(&mut self, on_event: &mut impl FnMut(&[u8])) {
        if self.has_data {
            on_event(&self.data);
            self.data.clear();
            self.has_data = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a rule makes of a recorded stream: the index of the first event with content,
    /// content events, the last usage and prompt counts said, and the tokenizer's sum.
    fn replay(
        rule: &TokenRule,
        stream: &str,
    ) -> (Option<usize>, u64, Option<u64>, Option<u64>, u64) {
        let t = Tokenizer::default();
        let mut p = SseParser::new();
        let (mut first, mut content, mut usage, mut prompt, mut tokens, mut i) =
            (None, 0, None, None, 0, 0);
        p.feed(stream.as_bytes(), |data| {
            let c = rule.classify_counted(data, Some(&t));
            assert_ne!(
                c.event,
                Event::Malformed,
                "{}",
                String::from_utf8_lossy(data)
            );
            if c.event == Event::Content {
                first.get_or_insert(i);
                content += 1;
            }
            usage = c.usage.or(usage);
            prompt = c.prompt.or(prompt);
            tokens += c.tokens;
            i += 1;
        });
        (first, content, usage, prompt, tokens)
    }

    #[test]
    fn each_api_s_documented_stream_gives_its_first_token_and_usage() {
        // Hand-typed from each API's public documentation (tests/fixtures/sse). The first
        // event with output text is where TTFT ends; usage is read where each API puts it.
        let fixture = |name: &str| {
            std::fs::read_to_string(format!(
                "{}/tests/fixtures/sse/{name}.txt",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap()
        };
        // OpenAI chat: a role chunk first (no content), usage in a last chunk without choices.
        let chat = replay(&TokenRule::OpenAi, &fixture("openai-chat"));
        assert_eq!(chat, (Some(1), 3, Some(9), Some(9), 9));
        // OpenAI completions: text from the first chunk on.
        let completions = replay(&TokenRule::OpenAi, &fixture("openai-completions"));
        assert_eq!(completions, (Some(0), 3, Some(5), Some(5), 5));
        // Responses: four events before the first output_text.delta; usage in
        // response.completed (input_tokens, output_tokens).
        let responses = replay(&TokenRule::Responses, &fixture("openai-responses"));
        assert_eq!(responses, (Some(4), 3, Some(11), Some(37), 3));
        // Anthropic: message_start (input 25, a placeholder output of 1 that is not the
        // answer's), a ping, then text deltas; output tokens in message_delta.
        let anthropic = replay(&TokenRule::Anthropic, &fixture("anthropic-messages"));
        assert_eq!(anthropic, (Some(3), 2, Some(15), Some(25), 2));
        // A rule for another API finds no content in them.
        assert_eq!(
            replay(&TokenRule::OpenAi, &fixture("anthropic-messages")).1,
            0
        );
        assert_eq!(
            replay(&TokenRule::Anthropic, &fixture("openai-responses")).1,
            0
        );
    }

    #[test]
    fn the_tokenizer_counts_each_events_text() {
        let cl = Tokenizer::named("cl100k_base").unwrap();
        let chunk = br#"{"choices":[{"delta":{"content":"tiktoken is great!"}}]}"#;
        let c = TokenRule::OpenAi.classify_counted(chunk, Some(&cl));
        assert_eq!((c.event, c.tokens), (Event::Content, 6));
        assert_eq!(TokenRule::OpenAi.classify_counted(chunk, None).tokens, 0);
        // Tool-call arguments and a legacy completions `text` count too; a role header not.
        let tool =
            br#"{"choices":[{"delta":{"tool_calls":[{"function":{"arguments":"hello world"}}]}}]}"#;
        assert_eq!(
            TokenRule::OpenAi.classify_counted(tool, Some(&cl)).tokens,
            2
        );
        let text = br#"{"choices":[{"text":"hello world"}]}"#;
        assert_eq!(
            TokenRule::OpenAi.classify_counted(text, Some(&cl)).tokens,
            2
        );
        let role = br#"{"choices":[{"delta":{"role":"assistant","content":""}}]}"#;
        let r = TokenRule::OpenAi.classify_counted(role, Some(&cl));
        assert_eq!((r.event, r.tokens), (Event::Empty, 0));
        let path = TokenRule::parse("delta.text").unwrap();
        let anth = br#"{"type":"content_block_delta","delta":{"text":"tiktoken is great!"}}"#;
        assert_eq!(path.classify_counted(anth, Some(&cl)).tokens, 6);
    }

    fn events(chunks: &[&[u8]]) -> Vec<String> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for c in chunks {
            p.feed(c, |d| out.push(String::from_utf8_lossy(d).into_owned()));
        }
        p.finish(|d| out.push(String::from_utf8_lossy(d).into_owned()));
        out
    }

    #[test]
    fn events_across_and_within_chunks() {
        let whole = b"data: a\n\ndata: b\r\n\r\n: comment\nevent: x\ndata: c1\ndata: c2\n\ndata: [DONE]\n\n";
        let want = vec!["a", "b", "c1\nc2", "[DONE]"];
        assert_eq!(events(&[whole]), want);
        // The same bytes one at a time: same events.
        let bytes: Vec<&[u8]> = whole.chunks(1).collect();
        assert_eq!(events(&bytes), want);
        // A last event without its blank line still counts at the end of the stream.
        assert_eq!(events(&[b"data: x\n\ndata: y"]), vec!["x", "y"]);
    }

    #[test]
    fn openai_rule() {
        let r = TokenRule::OpenAi;
        let role = br#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#;
        let tok = br#"{"choices":[{"index":0,"delta":{"content":"Hel\"lo"}}]}"#;
        let tool = br#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\""}}]}}]}"#;
        let legacy = br#"{"choices":[{"text":"hi","index":0}]}"#;
        let last = br#"{"choices":[{"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":50,"total_tokens":59}}"#;
        assert_eq!(r.classify(role), (Event::Empty, None));
        assert_eq!(r.classify(tok), (Event::Content, None));
        assert_eq!(r.classify(tool), (Event::Content, None));
        assert_eq!(r.classify(legacy), (Event::Content, None));
        assert_eq!(r.classify(last), (Event::Empty, Some(50)));
        assert_eq!(r.classify(b" [DONE] "), (Event::Done, None));
        assert_eq!(r.classify(b"{not json"), (Event::Malformed, None));
    }

    #[test]
    fn configurable_rules() {
        let anthropic = TokenRule::parse("delta.text").unwrap();
        assert_eq!(
            anthropic
                .classify(br#"{"type":"content_block_delta","delta":{"text":"x"}}"#)
                .0,
            Event::Content
        );
        assert_eq!(anthropic.classify(br#"{"type":"ping"}"#).0, Event::Empty);
        let any = TokenRule::parse("any").unwrap();
        assert_eq!(any.classify(b"plain words").0, Event::Content);
        assert!(TokenRule::parse("a..b").is_err());
    }
}

/// A per-request goodput target (`--slo 'ttft<500ms'`): a request counts as good when it
/// completed and met every target.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    /// As typed.
    pub expr: String,
    /// What is limited.
    pub metric: SloMetric,
    /// The limit (exclusive).
    pub limit: std::time::Duration,
}

/// What a goodput target limits, per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SloMetric {
    /// Time to first token, from the intended send time.
    Ttft,
    /// The longest gap between two tokens of the request.
    Itl,
    /// Time per output token after the first: (e2e − TTFT) / (tokens − 1).
    Tpot,
    /// End-to-end latency from the intended send time.
    E2e,
}

impl Slo {
    /// Parses `ttft<500ms`, `itl<50ms`, `tpot<20ms` or `e2e<2s`.
    pub fn parse(s: &str) -> Result<Slo, BadValue> {
        let hint = "expected ttft|itl|tpot|e2e < DURATION, e.g. ttft<500ms or itl<50ms";
        let t: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        let (name, value) = t
            .split_once('<')
            .ok_or_else(|| BadValue(format!("no '<'; {hint}")))?;
        let metric = match name {
            "ttft" => SloMetric::Ttft,
            "itl" => SloMetric::Itl,
            "tpot" => SloMetric::Tpot,
            "e2e" => SloMetric::E2e,
            other => return Err(format!("unknown metric {other:?}; {hint}").into()),
        };
        // A bare number would be seconds to the duration parser: `ttft<150` means 150 ms to
        // nearly everyone who types it. Refused, as --threshold refuses it.
        if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return Err(BadValue(format!(
                "limit {value:?} has no unit: write it with one, e.g. {name}<{value}ms or \
                 {name}<{value}s"
            )));
        }
        let limit = parse_duration(value).map_err(|r| BadValue(format!("{value:?}: {r}")))?;
        Ok(Slo {
            expr: s.trim().to_string(),
            metric,
            limit,
        })
    }
}

#[cfg(test)]
mod slo_tests {
    use super::*;

    #[test]
    fn slo_grammar() {
        let s = Slo::parse("ttft < 500ms").unwrap();
        assert_eq!(
            (s.metric, s.limit),
            (SloMetric::Ttft, std::time::Duration::from_millis(500))
        );
        assert_eq!(Slo::parse("itl<50ms").unwrap().metric, SloMetric::Itl);
        for bad in ["ttft>1s", "latency<1s", "ttft<soon", "ttft"] {
            assert!(Slo::parse(bad).is_err(), "{bad}");
        }
        // A bare number is refused with the fix in the message (it used to mean seconds).
        for bare in ["ttft<150", "itl<0.05", "e2e<2"] {
            let e = Slo::parse(bare).expect_err(bare).to_string();
            assert!(e.contains("no unit") && e.contains("ms"), "{bare}: {e}");
        }
    }
}
