//! The tray: an icon per state with the reason as its tooltip, and a menu with the status line,
//! "Share when idle", "Pause for 1 hour" / "Resume now", "Open Idlegrid" and "Quit". It lives on the
//! main thread's event loop; the menu is edited in place as the status changes (some Linux panels
//! cannot have it replaced).

use idlegrid::node::{Node, StateKind, Status, tray_line};
use tray_icon::menu::{CheckMenuItem, Menu, MenuEvent, MenuItem, PredefinedMenuItem};
use tray_icon::{Icon, MouseButton, MouseButtonState, TrayIcon, TrayIconBuilder, TrayIconEvent};

/// "Pause for 1 hour" pauses for this long.
const SNOOZE_MINUTES: u64 = 60;

/// What reaches the main thread's event loop from elsewhere.
#[derive(Debug)]
pub enum AppEvent {
    Status(Box<Status>),
    Menu(MenuEvent),
    Icon(TrayIconEvent),
    Quit,
}

/// What the event loop does after a menu item was chosen.
#[derive(Debug, PartialEq)]
pub enum Action {
    Nothing,
    OpenWindow,
    Quit,
}

/// The tray and the menu items that change.
pub struct Tray {
    icon: TrayIcon,
    line: MenuItem,
    sharing: CheckMenuItem,
    pause: MenuItem,
    /// What is shown, so an unchanged status touches nothing.
    shown: Option<Shown>,
}

#[derive(Clone, PartialEq)]
struct Shown {
    kind: StateKind,
    reason: String,
    line: String,
    sharing: bool,
    pause: &'static str,
}

impl Shown {
    fn of(status: &Status) -> Shown {
        Shown {
            kind: status.kind,
            reason: status.reason.clone(),
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

#[derive(Debug, thiserror::Error)]
pub enum TrayError {
    #[error("cannot build the tray menu: {0}")]
    Menu(#[from] tray_icon::menu::Error),
    #[error("cannot show the tray icon: {0}")]
    Icon(#[from] tray_icon::Error),
    #[error("a tray icon is unreadable: {0}")]
    Image(String),
}

impl Tray {
    pub fn create(status: &Status) -> Result<Tray, TrayError> {
        let shown = Shown::of(status);
        let line = MenuItem::with_id("status", &shown.line, false, None);
        let sharing =
            CheckMenuItem::with_id("sharing", "Share when idle", true, shown.sharing, None);
        let pause = MenuItem::with_id("pause", shown.pause, true, None);
        let open = MenuItem::with_id("open", "Open Idlegrid", true, None);
        let quit = MenuItem::with_id("quit", "Quit", true, None);
        let separator = PredefinedMenuItem::separator();
        let menu = Menu::with_items(&[&line, &sharing, &pause, &separator, &open, &quit])?;
        let icon = TrayIconBuilder::new()
            .with_id("idlegrid")
            .with_icon(icon(shown.kind)?)
            .with_tooltip(&status.reason)
            .with_menu(Box::new(menu))
            .with_menu_on_left_click(false)
            .build()?;
        Ok(Tray {
            icon,
            line,
            sharing,
            pause,
            shown: Some(shown),
        })
    }

    /// Brings the tray up to date with `status`.
    pub fn show(&mut self, status: &Status) {
        let next = Shown::of(status);
        if self.shown.as_ref() == Some(&next) {
            return;
        }
        let previous_kind = self.shown.as_ref().map(|s| s.kind);
        let updated = (|| -> Result<(), TrayError> {
            if previous_kind != Some(next.kind) {
                self.icon.set_icon(Some(icon(next.kind)?))?;
            }
            self.icon.set_tooltip(Some(&status.reason))?;
            self.line.set_text(&next.line);
            self.sharing.set_checked(next.sharing);
            self.pause.set_text(next.pause);
            Ok(())
        })();
        match updated {
            Ok(()) => self.shown = Some(next),
            Err(error) => tracing::warn!(%error, "cannot update the tray"),
        }
    }

    /// Draws everything again: a check item toggles itself when clicked, whatever the node says.
    pub fn redraw(&mut self, status: &Status) {
        self.shown = None;
        self.show(status);
    }
}

/// Carries out a menu choice on the node; what is left for the event loop is returned.
pub fn on_menu(node: &Node, item: &str) -> Action {
    let result = match item {
        // The item has already toggled itself; the redraw sets it back if the node refuses.
        "sharing" => node.set_sharing(!node.status().sharing).map(drop),
        "pause" if node.status().snoozed_until_ms.is_some() => node.resume().map(drop),
        "pause" => node.snooze(SNOOZE_MINUTES).map(drop),
        "open" => return Action::OpenWindow,
        "quit" => return Action::Quit,
        _ => Ok(()),
    };
    if let Err(error) = result {
        tracing::warn!(%error, item, "the tray's command failed");
    }
    Action::Nothing
}

/// A left click opens the window (platforms that report clicks; Linux panels show the menu).
pub fn is_open_click(event: &TrayIconEvent) -> bool {
    matches!(
        event,
        TrayIconEvent::Click {
            button: MouseButton::Left,
            button_state: MouseButtonState::Up,
            ..
        }
    )
}

fn icon(kind: StateKind) -> Result<Icon, TrayError> {
    let png: &[u8] = match kind {
        StateKind::Working => include_bytes!("../icons/tray-working.png"),
        StateKind::Paused | StateKind::Off => include_bytes!("../icons/tray-paused.png"),
        StateKind::Error => include_bytes!("../icons/tray-error.png"),
        StateKind::Waiting | StateKind::Connecting => include_bytes!("../icons/tray-waiting.png"),
    };
    let (rgba, width, height) = decode_png(png).map_err(TrayError::Image)?;
    Icon::from_rgba(rgba, width, height).map_err(|e| TrayError::Image(e.to_string()))
}

/// The icons are 8-bit RGBA PNGs (scripts/make-icons.py writes them so).
fn decode_png(png: &[u8]) -> Result<(Vec<u8>, u32, u32), String> {
    let mut reader = png::Decoder::new(std::io::Cursor::new(png))
        .read_info()
        .map_err(|e| e.to_string())?;
    let size = reader.output_buffer_size().ok_or("the icon is too large")?;
    let mut rgba = vec![0; size];
    let frame = reader.next_frame(&mut rgba).map_err(|e| e.to_string())?;
    if frame.color_type != png::ColorType::Rgba || frame.bit_depth != png::BitDepth::Eight {
        return Err(format!(
            "the icon is {:?} {:?}, not 8-bit RGBA",
            frame.color_type, frame.bit_depth
        ));
    }
    rgba.truncate(frame.buffer_size());
    Ok((rgba, frame.width, frame.height))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_has_an_icon() {
        for kind in [
            StateKind::Working,
            StateKind::Paused,
            StateKind::Off,
            StateKind::Error,
            StateKind::Waiting,
            StateKind::Connecting,
        ] {
            assert!(icon(kind).is_ok(), "{kind:?}");
        }
        let (rgba, width, height) =
            decode_png(include_bytes!("../icons/tray-working.png")).unwrap();
        assert_eq!((width, height, rgba.len()), (64, 64, 64 * 64 * 4));
    }
}
