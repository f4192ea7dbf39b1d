//! What a prompt made to a length costs the worker that sends it: `Prompts::body` for a
//! 1,024-token prompt (words drawn from the seed, the chat-completions JSON around them),
//! built per request on the sending thread.
//!
//! Run: `cargo bench --bench prompts`

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use ratebench::prompts::{PromptSource, Prompts, Synthetic};
use ratebench::tokens::Tokenizer;
use ratebench::units::TokenCount;

fn body(c: &mut Criterion) {
    let t = Tokenizer::default();
    for n in [128u64, 1024, 8192] {
        let p = Prompts {
            api: Default::default(),
            source: PromptSource::Synthetic(Synthetic::new(TokenCount::Fixed(n), 0, &t).unwrap()),
            models: vec![("m".into(), 1)],
            stream: true,
            output: Some(TokenCount::Fixed(128)),
            exact_output: true,
        };
        let mut k = 0u64;
        c.bench_function(&format!("body of a {n}-token prompt"), |b| {
            b.iter(|| {
                k += 1;
                black_box(p.body(7, k, "m"))
            })
        });
    }
}

criterion_group!(benches, body);
criterion_main!(benches);
