//! The tray: an icon per state with the reason as its tooltip, and a menu with the status line,
//! "Share when idle", "Pause for 1 hour" / "Resume now", "Open Idlegrid" and "Quit". The menu is
//! edited in place as the status changes (some Linux panels cannot have it replaced).

use std::sync::Mutex;

use idlegrid::node::{StateKind, Status, tray_line};
use tauri::image::Image;
use tauri::menu::{CheckMenuItem, Menu, MenuEvent, MenuItem, PredefinedMenuItem};
use tauri::tray::{MouseButton, MouseButtonState, TrayIcon, TrayIconBuilder, TrayIconEvent};
use tauri::{AppHandle, Manager, Runtime};

use crate::commands::AppState;
use crate::window;

/// "Pause for 1 hour" pauses for this long.
const SNOOZE_MINUTES: u64 = 60;

/// The tray and the menu items that change.
struct Tray<R: Runtime> {
    icon: TrayIcon<R>,
    line: MenuItem<R>,
    sharing: CheckMenuItem<R>,
    pause: MenuItem<R>,
    /// What is shown, so an unchanged status touches nothing.
    shown: Mutex<Option<Shown>>,
}

#[derive(Clone, PartialEq)]
struct Shown {
    kind: StateKind,
    line: String,
    sharing: bool,
    pause: &'static str,
}

impl Shown {
    fn of(status: &Status) -> Shown {
        Shown {
            kind: status.kind,
            line: tray_line(status),
            sharing: status.sharing,
            pause: if status.snoozed_until_ms.is_some() {
                "Resume now"
            } else {
                "Pause for 1 hour"
            },
        }
    }
}

fn icon(kind: StateKind) -> Image<'static> {
    match kind {
        StateKind::Working => tauri::include_image!("icons/tray-working.png"),
        StateKind::Paused | StateKind::Off => tauri::include_image!("icons/tray-paused.png"),
        StateKind::Error => tauri::include_image!("icons/tray-error.png"),
        StateKind::Waiting | StateKind::Connecting => {
            tauri::include_image!("icons/tray-waiting.png")
        }
    }
}

pub fn create<R: Runtime>(app: &AppHandle<R>, status: &Status) -> tauri::Result<()> {
    let shown = Shown::of(status);
    let line = MenuItem::with_id(app, "status", &shown.line, false, None::<&str>)?;
    let sharing = CheckMenuItem::with_id(
        app,
        "sharing",
        "Share when idle",
        true,
        shown.sharing,
        None::<&str>,
    )?;
    let pause = MenuItem::with_id(app, "pause", shown.pause, true, None::<&str>)?;
    let open = MenuItem::with_id(app, "open", "Open Idlegrid", true, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?;
    let separator = PredefinedMenuItem::separator(app)?;
    let menu = Menu::with_items(app, &[&line, &sharing, &pause, &separator, &open, &quit])?;
    let icon = TrayIconBuilder::with_id("idlegrid")
        .icon(icon(shown.kind))
        .tooltip(&status.reason)
        .menu(&menu)
        .show_menu_on_left_click(false)
        .on_menu_event(on_menu)
        .on_tray_icon_event(on_click)
        .build(app)?;
    app.manage(Tray {
        icon,
        line,
        sharing,
        pause,
        shown: Mutex::new(Some(shown)),
    });
    Ok(())
}

/// Brings the tray up to date with `status`; nothing happens where there is no tray (tests).
pub fn show<R: Runtime>(app: &AppHandle<R>, status: &Status) {
    let Some(tray) = app.try_state::<Tray<R>>() else {
        return;
    };
    let next = Shown::of(status);
    let mut shown = tray
        .shown
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if shown.as_ref() == Some(&next) {
        return;
    }
    let previous_kind = shown.as_ref().map(|s| s.kind);
    let updated = (|| -> tauri::Result<()> {
        if previous_kind != Some(next.kind) {
            tray.icon.set_icon(Some(icon(next.kind)))?;
        }
        tray.icon.set_tooltip(Some(&status.reason))?;
        tray.line.set_text(&next.line)?;
        tray.sharing.set_checked(next.sharing)?;
        tray.pause.set_text(next.pause)
    })();
    match updated {
        Ok(()) => *shown = Some(next),
        Err(error) => tracing::warn!(%error, "cannot update the tray"),
    }
}

fn on_menu<R: Runtime>(app: &AppHandle<R>, event: MenuEvent) {
    let Some(state) = app.try_state::<AppState>() else {
        return;
    };
    let node = &state.node;
    let result = match event.id().as_ref() {
        // The item has already toggled itself; the status sets it back if the node refuses.
        "sharing" => node.set_sharing(!node.status().sharing).map(drop),
        "pause" if node.status().snoozed_until_ms.is_some() => node.resume().map(drop),
        "pause" => node.snooze(SNOOZE_MINUTES).map(drop),
        "open" => {
            window::open_or_log(app);
            Ok(())
        }
        "quit" => {
            app.exit(0);
            Ok(())
        }
        _ => Ok(()),
    };
    if let Err(error) = result {
        tracing::warn!(%error, item = event.id().as_ref(), "the tray's command failed");
    }
    // A check item toggles itself when clicked; draw the menu again from the node's word.
    redraw(app, &node.status());
}

fn redraw<R: Runtime>(app: &AppHandle<R>, status: &Status) {
    if let Some(tray) = app.try_state::<Tray<R>>() {
        *tray
            .shown
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }
    show(app, status);
}

/// A left click opens the window (platforms that report clicks; Linux panels show the menu).
fn on_click<R: Runtime>(tray: &TrayIcon<R>, event: TrayIconEvent) {
    if let TrayIconEvent::Click {
        button: MouseButton::Left,
        button_state: MouseButtonState::Up,
        ..
    } = event
    {
        window::open_or_log(tray.app_handle());
    }
}
