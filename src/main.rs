use clap::Parser;

use hke::cli::{self, Cli, Failure};

fn main() {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // --help and --version print and exit 0; usage errors exit 2.
            let _ = e.print();
            std::process::exit(if e.use_stderr() { 2 } else { 0 });
        }
    };
    if let Err(failure) = cli::run(cli, &hke::context::Env::from_process()) {
        match &failure {
            Failure::Rejected(_) => {}
            Failure::Usage(msg) | Failure::Credentials(msg) | Failure::Unreachable(msg) => {
                hke::ui::say(&format!("error: {msg}"))
            }
            Failure::Interrupted(msg) => hke::ui::say(msg),
            Failure::Other(e) => hke::ui::say(&format!("error: {e:#}")),
            Failure::Exit(_, msg) => hke::ui::say(msg),
        }
        std::process::exit(failure.exit_code());
    }
}
