//! The web view's language: WebKitGTK reads it from the C library's locale, which in minimal
//! sessions says nothing an `Intl` formatter accepts.

/// WebKitGTK takes `navigator.language` from LC_CTYPE. Under "C.UTF-8" (containers, CI, minimal
/// sessions) it reports "C", which every `Intl` formatter rejects, and the window's script stops
/// before it draws anything; plain "C" it reports as "en-US". Character classification is all that
/// changes for this process and its children, and both are ASCII-compatible.
pub fn give_the_webview_a_language() {
    let read = |name: &str| std::env::var(name).ok();
    if let Some((name, value)) = locale_fix(read) {
        // SAFETY: called first thing in the window's `main`, before any thread of this process exists, so nothing
        // reads the environment while it changes.
        unsafe { std::env::set_var(name, value) };
    }
}

/// The variable to set, and its value, when the locale that decides LC_CTYPE is C with a codeset.
fn locale_fix(read: impl Fn(&str) -> Option<String>) -> Option<(&'static str, &'static str)> {
    let (name, value) = ["LC_ALL", "LC_CTYPE", "LANG"]
        .into_iter()
        .find_map(|name| Some((name, read(name).filter(|v| !v.is_empty())?)))?;
    let c_but_not_plain_c =
        value != "C" && matches!(value.split(['.', '@']).next(), Some("C" | "POSIX"));
    // LANG only sets a default; LC_CTYPE narrows the change to what WebKit reads.
    let name = if name == "LANG" { "LC_CTYPE" } else { name };
    c_but_not_plain_c.then_some((name, "C"))
}

#[cfg(test)]
mod tests {
    use super::locale_fix;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn only_a_c_locale_with_a_codeset_is_changed() {
        assert_eq!(
            locale_fix(env(&[("LANG", "C.UTF-8")])),
            Some(("LC_CTYPE", "C"))
        );
        assert_eq!(
            locale_fix(env(&[("LC_ALL", "C.utf8")])),
            Some(("LC_ALL", "C"))
        );
        assert_eq!(
            locale_fix(env(&[("LC_CTYPE", "POSIX"), ("LANG", "de_DE.UTF-8")])),
            Some(("LC_CTYPE", "C"))
        );
        assert_eq!(locale_fix(env(&[("LANG", "C")])), None);
        assert_eq!(locale_fix(env(&[("LANG", "en_US.UTF-8")])), None);
        assert_eq!(
            locale_fix(env(&[("LC_ALL", "fr_FR.UTF-8"), ("LANG", "C.UTF-8")])),
            None
        );
        assert_eq!(
            locale_fix(env(&[("LC_ALL", ""), ("LANG", "C.UTF-8")])),
            Some(("LC_CTYPE", "C"))
        );
        assert_eq!(locale_fix(env(&[])), None);
    }
}
