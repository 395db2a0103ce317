//! A program outside the repository that depends on the unpacked claw-llm crate by path
//! (scripts/test-package builds it offline and runs it against the mock gateway).

use futures::StreamExt;
use serde_json::{json, Map};

#[tokio::main]
async fn main() {
    match run().await {
        Ok(checks) => println!("rust consumer: {checks} passed, 0 failed"),
        Err(e) => {
            eprintln!("rust consumer FAILED: {e}");
            std::process::exit(1);
        }
    }
}

async fn run() -> Result<u32, String> {
    let mut checks = 0;
    let mut check = |cond: bool, what: &str| -> Result<(), String> {
        checks += 1;
        if cond {
            Ok(())
        } else {
            Err(what.to_string())
        }
    };
    let messages = json!([{"role": "user", "content": "hi"}]);
    let client = claw_llm::Client::from_env().map_err(|e| e.to_string())?;

    let reply = client
        .call_specific_model(
            "qwen-plus",
            messages.clone(),
            Map::new(),
            Default::default(),
        )
        .await
        .map_err(|e| e.to_string())?;
    check(reply["object"] == "chat.completion", "plain call")?;

    let mut stream = client
        .stream(
            "qwen-plus",
            messages.clone(),
            Map::new(),
            Default::default(),
        )
        .await
        .map_err(|e| e.to_string())?;
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        text.push_str(
            chunk["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap_or(""),
        );
    }
    check(text == "Hello, world!", "stream text")?;

    let emb = client
        .embed(
            "text-embedding-v4",
            json!(["a", "b"]),
            Map::new(),
            Default::default(),
        )
        .await
        .map_err(|e| e.to_string())?;
    let vectors = claw_llm::embeddings::vectors(&emb).map_err(|e| e.to_string())?;
    check(vectors.len() == 2, "embeddings")?;

    let err = client
        .call_specific_model(
            "mock-err-oneapi:status=401",
            messages,
            Map::new(),
            claw_llm::CallOptions {
                max_retries: Some(0),
                ..Default::default()
            },
        )
        .await
        .err()
        .ok_or("401 did not fail")?;
    check(
        err.code() == "LLM_HTTP_ERROR" && err.status() == Some(401),
        "401 error",
    )?;
    Ok(checks)
}
