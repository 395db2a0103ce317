//! claw-llm quickstart: one call, one stream printed token by token, one embedding.
//!
//! Needs `LLM_BASE_URL` and `LLM_API_KEY` (the demo points them at the bundled mock gateway).
//! `LLM_MODEL_ID` / `EMBEDDING_MODEL_ID` pick the models (defaults suit the mock).

use futures::StreamExt;
use serde_json::{json, Map};
use std::io::Write;

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("quickstart failed: {} ({})", e, e.code());
        std::process::exit(1);
    }
}

async fn run() -> claw_llm::Result<()> {
    let model = std::env::var("LLM_MODEL_ID").unwrap_or_else(|_| "qwen-plus".into());
    let embedding_model =
        std::env::var("EMBEDDING_MODEL_ID").unwrap_or_else(|_| "text-embedding-v4".into());
    let client = claw_llm::Client::from_env()?;
    let messages = json!([{"role": "user", "content": "Say hello to OpenClaw in five words."}]);

    // 1. A plain call: the gateway's JSON comes back untouched.
    let reply = client
        .call_specific_model(&model, messages.clone(), Map::new(), Default::default())
        .await?;
    println!(
        "[rust] completion: {}",
        reply["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or("")
    );

    // 2. A stream: tokens printed as they arrive, then the accumulated completion.
    let mut stream = client
        .stream(&model, messages, Map::new(), Default::default())
        .await?;
    print!("[rust] stream:");
    while let Some(chunk) = stream.next().await {
        if let Some(token) = chunk?["choices"][0]["delta"]["content"].as_str() {
            print!(" {token:?}");
            let _ = std::io::stdout().flush();
        }
    }
    let done = stream.final_completion();
    println!(
        "\n[rust] stream finished: {:?} (finish_reason {})",
        done["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or(""),
        done["choices"][0]["finish_reason"]
    );

    // 3. An embedding.
    let mut params = Map::new();
    params.insert("dimensions".into(), json!(1024));
    let emb = client
        .embed(
            &embedding_model,
            json!("OpenClaw remembers"),
            params,
            Default::default(),
        )
        .await?;
    let vectors = claw_llm::embeddings::vectors(&emb)?;
    println!("[rust] embedding length: {}", vectors[0].len());
    Ok(())
}
