//! Saving what the window exports (the payouts CSV) into a folder the person can find: a plain file
//! name only, never a path, and never over an existing file.

use std::path::{Path, PathBuf};

use super::NodeError;

const MAX_NAME_CHARS: usize = 100;
/// The CSV of payouts is small; anything this large is not one.
const MAX_BYTES: usize = 16 << 20;

/// `name` as a safe file name ending in `.csv`: letters, digits, spaces, `.`, `-`, `_` only, not
/// hidden, not empty.
pub fn csv_file_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    let stem = name.strip_suffix(".csv").unwrap_or(name);
    let allowed = |c: char| c.is_alphanumeric() || matches!(c, ' ' | '.' | '-' | '_');
    if stem.is_empty() || stem.starts_with('.') || !stem.chars().all(allowed) {
        return Err(format!(
            "\"{name}\" is not a plain file name (letters, digits, spaces, '.', '-', '_')"
        ));
    }
    if stem.chars().count() > MAX_NAME_CHARS {
        return Err(format!(
            "the file name is longer than {MAX_NAME_CHARS} characters"
        ));
    }
    Ok(format!("{stem}.csv"))
}

/// `name.csv`, or `name (2).csv` and so on when that is taken.
pub fn free_path(dir: &Path, file_name: &str) -> PathBuf {
    let stem = file_name.trim_end_matches(".csv");
    std::iter::once(dir.join(file_name))
        .chain((2..).map(|n| dir.join(format!("{stem} ({n}).csv"))))
        .find(|path| !path.exists())
        .unwrap_or_else(|| dir.join(file_name))
}

/// Writes `contents` to a new file in `dir`; returns its path.
pub fn save_csv(dir: &Path, name: &str, contents: &str) -> Result<PathBuf, NodeError> {
    let file_name = csv_file_name(name).map_err(NodeError::Export)?;
    if contents.len() > MAX_BYTES {
        return Err(NodeError::Export("the file is too large".into()));
    }
    let io = |source| NodeError::Io {
        path: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let path = free_path(dir, &file_name);
    // create_new: a file that appeared since the check above is not overwritten.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|source| NodeError::Io {
            path: path.clone(),
            source,
        })?;
    std::io::Write::write_all(&mut file, contents.as_bytes()).map_err(|source| NodeError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_and_end_in_csv() {
        assert_eq!(csv_file_name("payouts").unwrap(), "payouts.csv");
        assert_eq!(
            csv_file_name(" idlegrid-payouts 2026.csv ").unwrap(),
            "idlegrid-payouts 2026.csv"
        );
        for bad in ["", ".csv", "../x", "a/b", ".hidden", "a\\b", "x\u{0}"] {
            assert!(csv_file_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn saving_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let first = save_csv(dir.path(), "payouts", "a").unwrap();
        let second = save_csv(dir.path(), "payouts.csv", "b").unwrap();
        assert_eq!(first.file_name().unwrap(), "payouts.csv");
        assert_eq!(second.file_name().unwrap(), "payouts (2).csv");
        assert_eq!(std::fs::read_to_string(first).unwrap(), "a");
    }
}
