//! `claw-llm`: the command line. One subcommand today, `doctor` (see `claw_llm::doctor`).

use std::io::Write as _;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (code, out) = match args.split_first() {
        Some((cmd, rest)) if cmd == "doctor" => {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("claw-llm: cannot start the runtime: {e}");
                    std::process::exit(1);
                }
            };
            let (text, code) =
                runtime.block_on(claw_llm::doctor::main(rest, |n| std::env::var(n).ok()));
            (code, text)
        }
        Some((cmd, _)) if cmd == "-h" || cmd == "--help" => {
            (0, format!("{}\n", claw_llm::doctor::USAGE))
        }
        _ => (2, format!("{}\n", claw_llm::doctor::USAGE)),
    };
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
    std::process::exit(code);
}
