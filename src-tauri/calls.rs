//! The commands of docs/desktop-ipc.md, each a call to the node, answered for the window over the
//! link. Errors reach the window as the one-line sentence the node wrote.

use std::path::PathBuf;

use idlegrid::node::{Node, Range, Settings};
use serde::Deserialize;
use serde_json::Value;

use crate::autostart;
use crate::window::Windows;

/// What the commands share: the node, the window, and the folders the window may ask about.
pub struct AppState {
    pub node: Node,
    pub windows: Windows,
    pub logs_dir: PathBuf,
    /// Where exports are saved.
    pub downloads_dir: PathBuf,
}

/// Makes the typed `Command` out of the table in commands.rs: one variant a command, tagged with the
/// name the window invokes and holding its typed arguments. `run` matches every variant, so a command
/// added to the table and not answered, or an argument misnamed here, does not compile.
macro_rules! commands {
    ($($name:literal => $variant:ident { $($field:ident: $ty:ty),* $(,)? }),* $(,)?) => {
        /// A command of docs/desktop-ipc.md with its arguments (an object, keyed as that file says).
        #[derive(Clone, Debug, PartialEq, Deserialize)]
        #[serde(tag = "command", content = "args")]
        pub enum Command {
            $(
                #[serde(rename = $name)]
                $variant { $($field: $ty),* },
            )*
        }

        /// Every command's name, in the order of docs/desktop-ipc.md (the list build.rs declares).
        pub const COMMANDS: &[&str] = &[$($name),*];
    };
}

include!("commands.rs");

impl Command {
    /// The command `name` with the arguments the page gave.
    pub fn parse(name: &str, args: Value) -> Result<Command, String> {
        if !COMMANDS.contains(&name) {
            return Err(format!("there is no command \"{name}\""));
        }
        // A command without arguments may come with `null` rather than `{}`.
        let args = if args.is_null() {
            Value::Object(Default::default())
        } else {
            args
        };
        let tagged = serde_json::json!({ "command": name, "args": args });
        serde_json::from_value(tagged).map_err(|error| format!("bad arguments: {error}"))
    }
}

/// A command's answer: the value, or the sentence to show next to what caused the error.
pub type Reply = Result<Value, String>;

/// Runs `command`, named as the page named it, with the arguments the page gave.
pub async fn call(state: &AppState, command: &str, args: Value) -> Reply {
    run(state, Command::parse(command, args)?).await
}

/// Answers one command.
pub async fn run(state: &AppState, command: Command) -> Reply {
    let node = &state.node;
    match command {
        Command::GetStatus {} => value(node.status()),
        Command::SetSharing { on } => answer(node.set_sharing(on)),
        Command::Snooze { minutes } => answer(node.snooze(minutes)),
        Command::Resume {} => answer(node.resume()),
        Command::GetEarnings { range } => value(node.earnings(range)),
        Command::GetPayouts {} => value(node.payouts()),
        Command::SaveCsv { name, contents } => {
            let path = node.save_csv(&state.downloads_dir, &name, &contents);
            answer(path.map(|path| path.display().to_string()))
        }
        Command::GetHardware {} => answer(node.hardware().await),
        Command::RunBenchmark { adapter } => answer(node.run_benchmark(&adapter).await),
        Command::SetGpuShared { adapter, shared } => {
            answer(node.set_gpu_shared(&adapter, shared).await)
        }
        Command::GetPools {} => value(node.pools()),
        Command::JoinPool { ticket, name } => {
            answer(node.join_pool(&ticket, name.as_deref()).await)
        }
        Command::LeavePool { id } => answer(node.leave_pool(&id).await),
        Command::BlockPool { id } => answer(node.block_pool(&id).await),
        Command::StartLocalPool {} => answer(node.start_local_pool().await),
        Command::GetSettings {} => value(node.settings()),
        Command::SetSettings { settings } => {
            let saved = node.set_settings(*settings).map_err(|e| e.to_string())?;
            autostart::apply(saved.start_at_login);
            value(saved)
        }
        Command::OpenExplorer { id } => {
            let url = node.explorer_url(&id).map_err(|e| e.to_string())?;
            answer(
                open::that_detached(&url)
                    .map(|()| Value::Null)
                    .map_err(|error| format!("cannot open {url}: {error}")),
            )
        }
        Command::OpenLogsFolder {} => answer(
            open::that_detached(&state.logs_dir)
                .map_err(|error| format!("cannot open {}: {error}", state.logs_dir.display())),
        ),
    }
}

fn answer<T: serde::Serialize, E: std::fmt::Display>(result: Result<T, E>) -> Reply {
    value(result.map_err(|error| error.to_string())?)
}

fn value<T: serde::Serialize>(value: T) -> Reply {
    serde_json::to_value(value).map_err(|error| format!("cannot send the answer: {error}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_command_is_its_name_and_typed_arguments() {
        assert_eq!(
            Command::parse("snooze", json!({ "minutes": 60 })),
            Ok(Command::Snooze { minutes: 60 })
        );
        assert_eq!(
            Command::parse("join_pool", json!({ "ticket": "t", "name": null })),
            Ok(Command::JoinPool {
                ticket: "t".into(),
                name: None
            })
        );
        // Tauri sends `{}` for a command without arguments; a hand-made call may send `null`.
        assert_eq!(
            Command::parse("get_status", Value::Null),
            Ok(Command::GetStatus {})
        );
        assert_eq!(
            Command::parse("get_earnings", json!({ "range": "7d" })),
            Ok(Command::GetEarnings { range: Range::Week })
        );
    }

    #[test]
    fn every_listed_name_is_a_command() {
        for name in COMMANDS {
            let error = Command::parse(name, json!({})).err().unwrap_or_default();
            assert!(!error.contains("no command"), "{name}: {error}");
        }
        assert_eq!(
            Command::parse("format_disk", json!({})),
            Err("there is no command \"format_disk\"".into())
        );
        let bad = Command::parse("snooze", json!({ "minutes": "soon" })).unwrap_err();
        assert!(bad.starts_with("bad arguments"), "{bad}");
    }
}
