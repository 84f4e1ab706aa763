//! The commands of docs/desktop-ipc.md, each a call to the node, answered for the window over the
//! link. Errors reach the window as the one-line sentence the node wrote.

use std::path::PathBuf;

use idlegrid::node::{Node, Range, Settings};
use serde::Deserialize;
use serde::de::DeserializeOwned;
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

include!("command_names.rs");

/// A command's answer: the value, or the sentence to show next to what caused the error.
pub type Reply = Result<Value, String>;

/// Runs `command` with the arguments the page gave (an object, keyed as docs/desktop-ipc.md says).
pub async fn call(state: &AppState, command: &str, args: Value) -> Reply {
    let node = &state.node;
    match command {
        "get_status" => value(node.status()),
        "set_sharing" => {
            let On { on } = parse(args)?;
            answer(node.set_sharing(on))
        }
        "snooze" => {
            let Minutes { minutes } = parse(args)?;
            answer(node.snooze(minutes))
        }
        "resume" => answer(node.resume()),
        "get_earnings" => {
            let ForRange { range } = parse(args)?;
            value(node.earnings(range))
        }
        "get_payouts" => value(node.payouts()),
        "save_csv" => {
            let Export { name, contents } = parse(args)?;
            let path = node.save_csv(&state.downloads_dir, &name, &contents);
            answer(path.map(|path| path.display().to_string()))
        }
        "get_hardware" => answer(node.hardware().await),
        "run_benchmark" => {
            let Adapter { adapter } = parse(args)?;
            answer(node.run_benchmark(&adapter).await)
        }
        "set_gpu_shared" => {
            let GpuShared { adapter, shared } = parse(args)?;
            answer(node.set_gpu_shared(&adapter, shared).await)
        }
        "get_pools" => value(node.pools()),
        "join_pool" => {
            let Join { ticket, name } = parse(args)?;
            answer(node.join_pool(&ticket, name.as_deref()).await)
        }
        "leave_pool" => {
            let PoolId { id } = parse(args)?;
            answer(node.leave_pool(&id).await)
        }
        "block_pool" => {
            let PoolId { id } = parse(args)?;
            answer(node.block_pool(&id).await)
        }
        "start_local_pool" => answer(node.start_local_pool().await),
        "get_settings" => value(node.settings()),
        "set_settings" => {
            let NewSettings { settings } = parse(args)?;
            let saved = node.set_settings(settings).map_err(|e| e.to_string())?;
            autostart::apply(saved.start_at_login);
            value(saved)
        }
        "open_logs_folder" => answer(
            open::that_detached(&state.logs_dir)
                .map_err(|error| format!("cannot open {}: {error}", state.logs_dir.display())),
        ),
        _ => Err(format!("there is no command \"{command}\"")),
    }
}

fn answer<T: serde::Serialize, E: std::fmt::Display>(result: Result<T, E>) -> Reply {
    value(result.map_err(|error| error.to_string())?)
}

fn value<T: serde::Serialize>(value: T) -> Reply {
    serde_json::to_value(value).map_err(|error| format!("cannot send the answer: {error}"))
}

fn parse<T: DeserializeOwned>(args: Value) -> Result<T, String> {
    // A command without arguments may come with `null` rather than `{}`.
    let args = if args.is_null() {
        Value::Object(Default::default())
    } else {
        args
    };
    serde_json::from_value(args).map_err(|error| format!("bad arguments: {error}"))
}

#[derive(Deserialize)]
struct On {
    on: bool,
}

#[derive(Deserialize)]
struct Minutes {
    minutes: u64,
}

#[derive(Deserialize)]
struct ForRange {
    range: Range,
}

#[derive(Deserialize)]
struct Export {
    name: String,
    contents: String,
}

#[derive(Deserialize)]
struct Adapter {
    adapter: String,
}

#[derive(Deserialize)]
struct GpuShared {
    adapter: String,
    shared: bool,
}

#[derive(Deserialize)]
struct Join {
    ticket: String,
    name: Option<String>,
}

#[derive(Deserialize)]
struct PoolId {
    id: String,
}

#[derive(Deserialize)]
struct NewSettings {
    settings: Settings,
}
