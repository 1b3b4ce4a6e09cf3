//! `citybrain token create|revoke|list`: manages the API tokens file (`api.tokens_file`).
//!
//! `create` prints the new token once on stdout (nothing else goes there, so scripts can capture
//! it) and stores only its SHA-256. A running server follows the file, so a revoked token stops
//! working within a second, without a restart.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::api::{Auth, Role, TokensFile};

/// Arguments of `citybrain token`.
#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: TokenCommand,
    /// Tokens file: a YAML list of `{name, role, sha256}` (the config's `api.tokens_file`).
    #[arg(
        long,
        global = true,
        env = "CITYBRAIN_TOKENS_FILE",
        default_value = "tokens.yaml"
    )]
    pub tokens_file: PathBuf,
}

/// `citybrain token` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Creates a token, prints it once and stores only its SHA-256 (creates the file if needed).
    Create {
        /// Unique name, recorded as the actor of every change made with the token; for a crew,
        /// its crew id (`W-07`). Letters, digits, `-`, `_`, `.`.
        #[arg(long)]
        name: String,
        /// viewer (read), operator (lifecycle, silences, dispatch), crew (its own dispatches),
        /// engineer (pipelines, replay), admin (everything, tokens).
        #[arg(long, value_parser = parse_role)]
        role: Role,
    },
    /// Revokes every token with this name.
    Revoke {
        /// Token name.
        #[arg(long)]
        name: String,
    },
    /// Lists token names and roles (never secrets or digests).
    List,
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| {
        let names: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        format!("unknown role {s:?}: expected one of {}", names.join(", "))
    })
}

/// Runs `citybrain token …`.
pub fn token(args: TokenArgs) -> anyhow::Result<ExitCode> {
    let file = TokensFile::new(&args.tokens_file);
    let shown = args.tokens_file.display();
    match args.command {
        TokenCommand::Create { name, role } => {
            let (token, entry) = Auth::generate(&name, role);
            file.append(entry)
                .with_context(|| format!("adding token {name:?} to {shown}"))?;
            eprintln!(
                "created token {name:?} ({}) in {shown}; it is shown only now:",
                role.as_str()
            );
            println!("{token}");
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::Revoke { name } => {
            let (removed, _) = file
                .revoke(&name)
                .with_context(|| format!("revoking {name:?} in {shown}"))?;
            if removed {
                eprintln!("revoked token {name:?} in {shown}");
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("no token named {name:?} in {shown}");
                Ok(ExitCode::FAILURE)
            }
        }
        TokenCommand::List => {
            let entries = file.read().with_context(|| format!("reading {shown}"))?;
            for e in entries {
                println!("{}\t{}", e.name, e.role.as_str());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::read_tokens_file;

    fn run(file: &std::path::Path, command: TokenCommand) -> ExitCode {
        token(TokenArgs {
            command,
            tokens_file: file.to_path_buf(),
        })
        .expect("token command runs")
    }

    #[test]
    fn create_list_revoke_keep_only_digests_and_a_running_server_follows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("tokens.yaml");
        let create = |name: &str, role| TokenCommand::Create {
            name: name.into(),
            role,
        };
        assert_eq!(run(&file, create("W-07", Role::Crew)), ExitCode::SUCCESS);
        assert_eq!(
            run(&file, create("ops-1", Role::Operator)),
            ExitCode::SUCCESS
        );
        let entries = read_tokens_file(&file).expect("file parses");
        assert_eq!(entries.len(), 2);
        assert!(entries.iter().all(|e| e.sha256.len() == 64));
        // A server started on the file sees a later revoke without a restart.
        let auth = Auth::from_file(&file).expect("loads");
        assert_eq!(auth.list().len(), 2);
        assert!(
            token(TokenArgs {
                command: create("ops-1", Role::Admin),
                tokens_file: file.clone(),
            })
            .is_err(),
            "names are unique"
        );
        assert_eq!(
            run(
                &file,
                TokenCommand::Revoke {
                    name: "ops-1".into()
                }
            ),
            ExitCode::SUCCESS
        );
        assert_eq!(
            run(
                &file,
                TokenCommand::Revoke {
                    name: "ops-1".into()
                }
            ),
            ExitCode::FAILURE,
            "nothing left to revoke"
        );
        std::thread::sleep(
            crate::api::TOKENS_RELOAD_INTERVAL + std::time::Duration::from_millis(50),
        );
        let names: Vec<String> = auth.list().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["W-07"]);
        assert_eq!(run(&file, TokenCommand::List), ExitCode::SUCCESS);
        assert!(parse_role("wizard").is_err_and(|e| e.contains("viewer")));
    }
}
