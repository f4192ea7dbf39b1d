//! A run's LLM flags: prompts read or made, the API they are sent in, its headers and
//! token rule, and `-n` with ramps.

use super::parse::parse_count;
use super::*;

impl RunArgs {
    /// The LLM flags make sense together: prompts read or made (not both), with a model,
    /// and the flags that shape them only with them.
    pub(super) fn check_llm_flags(&self) -> Result<(), ConfigError> {
        let missing = |m: &str| Err(ConfigError::Missing(m.into()));
        let made = self.input_tokens.is_some();
        let any = made || self.prompts.is_some();
        if made && self.prompts.is_some() {
            return missing(
                "--input-tokens makes prompts and --prompts reads them: use one of the two",
            );
        }
        if any && self.models.is_empty() {
            return missing("--prompts and --input-tokens need at least one --model NAME[=WEIGHT]");
        }
        if !any {
            let stray = [
                (!self.models.is_empty(), "--model"),
                (self.no_stream, "--no-stream"),
                (self.output_tokens.is_some(), "--output-tokens"),
                (self.exact_output, "--exact-output"),
            ];
            if let Some((_, flag)) = stray.iter().find(|(on, _)| *on) {
                return Err(ConfigError::Missing(format!(
                    "{flag} is for LLM runs: add --prompts FILE (JSONL or ShareGPT) or \
                     --input-tokens N (prompts made to a length), with --model"
                )));
            }
        }
        if self.shared_prefix_tokens.is_some() && !made {
            return missing("--shared-prefix-tokens is for prompts made by --input-tokens");
        }
        if any && self.script.is_some() {
            return missing(
                "--prompts and --input-tokens build the requests: they do not combine with \
                 -s/--script",
            );
        }
        let api = self.api()?;
        if self.exact_output && !api.exact_output() {
            return Err(invalid(
                "--exact-output",
                api.name(),
                "min_tokens and ignore_eos are for openai-chat and openai-completions \
                 (vLLM, SGLang, TGI); this API has no way to ask for an exact length",
            ));
        }
        if made && self.tokenizer.as_deref().map(str::trim) == Some("none") {
            return missing("--input-tokens sizes prompts by a tokenizer: name one, not none");
        }
        Ok(())
    }

    /// `-n N`: the window in which a constant-rate schedule has exactly N due times — up to
    /// the N-th's (excluded), `Rate::due_ns(N)`.
    pub(super) fn duration_of_requests(
        &self,
        n: &str,
        rate: Option<Rate>,
        stages: &[crate::pacer::Stage],
    ) -> Result<Duration, ConfigError> {
        let flag = "-n/--requests";
        let count = parse_count(flag, n)? as u64;
        if let Some(d) = &self.duration {
            return Err(invalid(
                flag,
                n,
                format!("-n and -d ({d}) both say how long: give one"),
            ));
        }
        if !stages.is_empty() || !self.until.is_empty() {
            return Err(invalid(
                flag,
                n,
                "-n is for a constant rate: leave out --stages and --until",
            ));
        }
        if self.arrival.trim() != "constant" {
            return Err(invalid(
                flag,
                n,
                "random arrivals send a random number of requests in a window: give -d (or \
                 --arrival constant)",
            ));
        }
        let rate = rate.expect("-R is required without --stages");
        let ns = u64::try_from(rate.due_ns(count)).unwrap_or(u64::MAX);
        Ok(Duration::from_nanos(ns))
    }

    /// `--api`.
    pub(super) fn api(&self) -> Result<Api, ConfigError> {
        Api::parse(&self.api).map_err(|r| invalid("--api", &self.api, r))
    }

    /// `--sse-token`, else the `--api`'s rule.
    pub(super) fn token_rule(&self) -> Result<TokenRule, ConfigError> {
        match &self.sse_token {
            Some(r) => TokenRule::parse(r).map_err(|e| invalid("--sse-token", r, e)),
            None => Ok(match self.api()? {
                Api::OpenAiChat | Api::OpenAiCompletions => TokenRule::OpenAi,
                Api::OpenAiResponses => TokenRule::Responses,
                Api::AnthropicMessages => TokenRule::Anthropic,
            }),
        }
    }

    /// The headers `--api` and `--api-key` add to `-H`'s (which win).
    pub(super) fn api_headers(
        &self,
        headers: &mut Vec<(HeaderName, HeaderValue)>,
    ) -> Result<(), ConfigError> {
        let api = self.api()?;
        let mut add = |name: &'static str, value: String, flag: &'static str| {
            let name = HeaderName::from_static(name);
            if headers.iter().any(|(n, _)| *n == name) {
                return Ok(());
            }
            let v = HeaderValue::from_str(&value)
                .map_err(|_| invalid(flag, &value, "not a valid header value"))?;
            headers.push((name, v));
            Ok::<(), ConfigError>(())
        };
        if api == Api::AnthropicMessages {
            add(
                "anthropic-version",
                self.anthropic_version.trim().to_string(),
                "--anthropic-version",
            )?;
        }
        if let Some(k) = &self.api_key {
            match api {
                Api::AnthropicMessages => add("x-api-key", k.trim().to_string(), "--api-key")?,
                _ => add("authorization", format!("Bearer {}", k.trim()), "--api-key")?,
            }
        }
        Ok(())
    }

    /// The prompts of an LLM run (`check_llm_flags` passed), counted or made by the plan's
    /// tokenizer: a file's are kept up to the most requests the run can send.
    pub(super) fn prompts_of(&self, plan: &Plan) -> Result<Prompts, ConfigError> {
        let models = self
            .models
            .iter()
            .map(|m| parse_model(m))
            .collect::<Result<Vec<_>, _>>()?;
        for (i, (m, _)) in models.iter().enumerate() {
            if models[..i].iter().any(|(n, _)| n == m) {
                return Err(invalid("--model", m, "named twice"));
            }
        }
        let tokens =
            |flag: &'static str, v: &str| TokenCount::parse(v).map_err(|r| invalid(flag, v, r));
        let output = match &self.output_tokens {
            Some(v) => Some(tokens("--output-tokens", v)?),
            None => None,
        };
        let source = match (&self.prompts, &self.input_tokens) {
            (Some(path), _) => {
                let seconds = plan.duration + plan.warmup.unwrap_or_default();
                let most = plan.rate.as_f64().max(plan_peak_rate(plan)) * seconds.as_secs_f64();
                let limit = (most.ceil() as usize).saturating_add(1);
                PromptSource::File(read_prompts(path, plan.tokenizer.as_ref(), limit)?)
            }
            (None, Some(n)) => {
                let input = tokens("--input-tokens", n)?;
                let prefix_tokens = match &self.shared_prefix_tokens {
                    Some(p) => match TokenCount::parse(p) {
                        Ok(TokenCount::Fixed(p)) => p,
                        _ => {
                            return Err(invalid(
                                "--shared-prefix-tokens",
                                p,
                                "a whole number of tokens ≥ 1, e.g. 256",
                            ))
                        }
                    },
                    None => 0,
                };
                let t = plan
                    .tokenizer
                    .as_ref()
                    .expect("check_llm_flags: a tokenizer");
                PromptSource::Synthetic(
                    Synthetic::new(input, prefix_tokens, t)
                        .map_err(|r| invalid("--tokenizer", t.name(), r))?,
                )
            }
            (None, None) => unreachable!("prompts_of is for LLM runs"),
        };
        Ok(Prompts {
            api: self.api()?,
            source,
            models,
            stream: !self.no_stream,
            output,
            exact_output: self.exact_output,
        })
    }
}
