//! The four streaming APIs `serve` speaks, as their public documentation shows them: the
//! events around the answer's tokens, each token's event, and a whole JSON answer.
//!
//! - OpenAI chat completions (`POST /v1/chat/completions`): `chat.completion.chunk` events,
//!   usage in the last chunk, `data: [DONE]`.
//! - OpenAI completions (`POST /v1/completions`): `choices[].text` chunks, the same ending.
//! - OpenAI Responses (`POST /v1/responses`): named events, `response.output_text.delta`
//!   per token, usage in `response.completed`.
//! - Anthropic messages (`POST /v1/messages`): `message_start` (input tokens),
//!   `content_block_delta` per token, `message_delta` (output tokens), `message_stop`.

use bytes::Bytes;

/// One of the APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenAI chat completions.
    Chat,
    /// OpenAI (legacy) completions.
    Completions,
    /// OpenAI Responses.
    Responses,
    /// Anthropic messages.
    Messages,
}

/// What every event of one answer shares.
pub struct Answer<'a> {
    /// The answer's id.
    pub id: &'a str,
    /// The model it names.
    pub model: &'a str,
    /// Its prompt's tokens.
    pub prompt_tokens: u64,
    /// Its tokens.
    pub tokens: u64,
}

/// A named SSE event (`event:` and `data:` lines).
fn named(event: &str, data: &str) -> Bytes {
    Bytes::from(format!("event: {event}\ndata: {data}\n\n"))
}

/// A `data:`-only SSE event.
fn data(data: &str) -> Bytes {
    Bytes::from(format!("data: {data}\n\n"))
}

impl Format {
    /// The API that `path` names (POST).
    pub fn of_path(path: &str) -> Option<Format> {
        match path {
            "/v1/chat/completions" => Some(Format::Chat),
            "/v1/completions" => Some(Format::Completions),
            "/v1/responses" => Some(Format::Responses),
            "/v1/messages" => Some(Format::Messages),
            _ => None,
        }
    }

    /// Whether the request asked for usage in the stream (OpenAI chat and completions:
    /// `stream_options.include_usage`, true unless it says false; the others always send it).
    pub fn include_usage(self, json: &serde_json::Value) -> bool {
        match self {
            Format::Chat | Format::Completions => json
                .pointer("/stream_options/include_usage")
                .and_then(|v| v.as_bool())
                .unwrap_or(true),
            Format::Responses | Format::Messages => true,
        }
    }

    /// The events before the first token.
    pub fn opening(self, a: &Answer) -> Vec<Bytes> {
        let (id, model) = (a.id, a.model);
        match self {
            // The role comes first and carries no content, as OpenAI's does.
            Format::Chat => vec![chat_chunk(a, "\"role\":\"assistant\",\"content\":\"\"", "null", "")],
            Format::Completions => Vec::new(),
            Format::Responses => vec![
                named(
                    "response.created",
                    &format!(
                        "{{\"type\":\"response.created\",\"response\":{{\"id\":\"{id}\",\"object\":\"response\",\"status\":\"in_progress\",\"model\":\"{model}\",\"output\":[]}}}}"
                    ),
                ),
                named(
                    "response.output_item.added",
                    &format!(
                        "{{\"type\":\"response.output_item.added\",\"output_index\":0,\"item\":{{\"id\":\"msg_{id}\",\"type\":\"message\",\"status\":\"in_progress\",\"role\":\"assistant\",\"content\":[]}}}}"
                    ),
                ),
            ],
            Format::Messages => vec![
                named(
                    "message_start",
                    &format!(
                        "{{\"type\":\"message_start\",\"message\":{{\"id\":\"{id}\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"{model}\",\"content\":[],\"stop_reason\":null,\"usage\":{{\"input_tokens\":{},\"output_tokens\":1}}}}}}",
                        a.prompt_tokens
                    ),
                ),
                named(
                    "content_block_start",
                    "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}",
                ),
            ],
        }
    }

    /// The event that carries `word`.
    pub fn token(self, a: &Answer, word: &str) -> Bytes {
        match self {
            Format::Chat => chat_chunk(a, &format!("\"content\":\"{word}\""), "null", ""),
            Format::Completions => completion_chunk(a, word, "null", ""),
            Format::Responses => named(
                "response.output_text.delta",
                &format!(
                    "{{\"type\":\"response.output_text.delta\",\"item_id\":\"msg_{}\",\"output_index\":0,\"content_index\":0,\"delta\":\"{word}\"}}",
                    a.id
                ),
            ),
            Format::Messages => named(
                "content_block_delta",
                &format!(
                    "{{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"{word}\"}}}}"
                ),
            ),
        }
    }

    /// The events after the last token (`text`: the whole answer; with usage unless the
    /// request asked for none).
    pub fn closing(self, a: &Answer, text: &str, include_usage: bool) -> Vec<Bytes> {
        let (p, t) = (a.prompt_tokens, a.tokens);
        let openai_usage = || {
            if include_usage {
                format!(
                    ",\"usage\":{{\"prompt_tokens\":{p},\"completion_tokens\":{t},\"total_tokens\":{}}}",
                    p + t
                )
            } else {
                String::new()
            }
        };
        match self {
            Format::Chat => vec![
                chat_chunk(a, "", "\"stop\"", &openai_usage()),
                Bytes::from_static(b"data: [DONE]\n\n"),
            ],
            Format::Completions => vec![
                completion_chunk(a, "", "\"stop\"", &openai_usage()),
                Bytes::from_static(b"data: [DONE]\n\n"),
            ],
            Format::Responses => vec![
                named(
                    "response.output_text.done",
                    &format!(
                        "{{\"type\":\"response.output_text.done\",\"item_id\":\"msg_{}\",\"output_index\":0,\"content_index\":0,\"text\":\"{text}\"}}",
                        a.id
                    ),
                ),
                named(
                    "response.completed",
                    &format!(
                        "{{\"type\":\"response.completed\",\"response\":{}}}",
                        self.whole(a, text)
                    ),
                ),
            ],
            Format::Messages => vec![
                named(
                    "content_block_stop",
                    "{\"type\":\"content_block_stop\",\"index\":0}",
                ),
                named(
                    "message_delta",
                    &format!(
                        "{{\"type\":\"message_delta\",\"delta\":{{\"stop_reason\":\"end_turn\",\"stop_sequence\":null}},\"usage\":{{\"output_tokens\":{t}}}}}"
                    ),
                ),
                named("message_stop", "{\"type\":\"message_stop\"}"),
            ],
        }
    }

    /// The whole answer as one JSON document (`"stream": false`).
    pub fn whole(self, a: &Answer, text: &str) -> String {
        let (id, model, p, t) = (a.id, a.model, a.prompt_tokens, a.tokens);
        let openai_usage = format!(
            "\"usage\":{{\"prompt_tokens\":{p},\"completion_tokens\":{t},\"total_tokens\":{}}}",
            p + t
        );
        match self {
            Format::Chat => format!(
                "{{\"id\":\"{id}\",\"object\":\"chat.completion\",\"created\":0,\"model\":\"{model}\",\"choices\":[{{\"index\":0,\
                 \"message\":{{\"role\":\"assistant\",\"content\":\"{text}\"}},\"finish_reason\":\"stop\"}}],{openai_usage}}}"
            ),
            Format::Completions => format!(
                "{{\"id\":\"{id}\",\"object\":\"text_completion\",\"created\":0,\"model\":\"{model}\",\"choices\":[{{\"index\":0,\
                 \"text\":\"{text}\",\"finish_reason\":\"stop\"}}],{openai_usage}}}"
            ),
            Format::Responses => format!(
                "{{\"id\":\"{id}\",\"object\":\"response\",\"status\":\"completed\",\"model\":\"{model}\",\"output\":[{{\"id\":\"msg_{id}\",\
                 \"type\":\"message\",\"status\":\"completed\",\"role\":\"assistant\",\"content\":[{{\"type\":\"output_text\",\"text\":\"{text}\",\
                 \"annotations\":[]}}]}}],\"usage\":{{\"input_tokens\":{p},\"output_tokens\":{t},\"total_tokens\":{}}}}}",
                p + t
            ),
            Format::Messages => format!(
                "{{\"id\":\"{id}\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"{model}\",\"content\":[{{\"type\":\"text\",\
                 \"text\":\"{text}\"}}],\"stop_reason\":\"end_turn\",\"stop_sequence\":null,\"usage\":{{\"input_tokens\":{p},\"output_tokens\":{t}}}}}"
            ),
        }
    }
}

/// One OpenAI chat-completion chunk.
fn chat_chunk(a: &Answer, delta: &str, finish: &str, usage: &str) -> Bytes {
    data(&format!(
        "{{\"id\":\"{}\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"{}\",\
         \"choices\":[{{\"index\":0,\"delta\":{{{delta}}},\"finish_reason\":{finish}}}]{usage}}}",
        a.id, a.model
    ))
}

/// One OpenAI completions chunk.
fn completion_chunk(a: &Answer, text: &str, finish: &str, usage: &str) -> Bytes {
    data(&format!(
        "{{\"id\":\"{}\",\"object\":\"text_completion\",\"created\":0,\"model\":\"{}\",\
         \"choices\":[{{\"index\":0,\"text\":\"{text}\",\"finish_reason\":{finish}}}]{usage}}}",
        a.id, a.model
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every event is well-formed JSON in an SSE frame, in each format.
    #[test]
    fn every_event_is_json_in_an_sse_frame() {
        let a = Answer {
            id: "x1",
            model: "m",
            prompt_tokens: 7,
            tokens: 2,
        };
        for f in [
            Format::Chat,
            Format::Completions,
            Format::Responses,
            Format::Messages,
        ] {
            let mut events = f.opening(&a);
            events.push(f.token(&a, " the"));
            events.push(f.token(&a, " of"));
            events.extend(f.closing(&a, " the of", true));
            for e in &events {
                let s = std::str::from_utf8(e).unwrap();
                assert!(s.ends_with("\n\n"), "{f:?}: {s}");
                let data = s.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
                if data != "[DONE]" {
                    serde_json::from_str::<serde_json::Value>(data)
                        .unwrap_or_else(|e| panic!("{f:?}: {data}: {e}"));
                }
            }
            serde_json::from_str::<serde_json::Value>(&f.whole(&a, " the of")).unwrap();
        }
    }
}
