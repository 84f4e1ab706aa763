//! This machine's identity: the iroh secret key its endpoints are known by.
//!
//! Pools pay providers and trust submitters by public key, so losing the secret key loses the money
//! and reputation attached to it, and a key that silently changes is the same loss. The key is kept
//! in the OS keyring (Secret Service, Keychain, Credential Manager), one entry per data dir, so
//! several providers or pools on one machine are different identities. Where no keyring can be
//! reached, it is kept in `DATA_DIR/identity.key`, readable only by its owner, and a warning says so.
//!
//! `identity.key` holds the 32 secret bytes as 64 lowercase hex digits and a newline: a person can
//! back it up, compare it or move it between machines with any text tool.
//! `.identity.lock` next to it serialises processes that start at once on a new data dir.
//!
//! Keyring calls block (the Secret Service is D-Bus round trips): async callers should use
//! `spawn_blocking`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use iroh::{PublicKey, SecretKey};
use keyring_core::{Entry, Error as KeyringError};

/// The keyring service every identity entry is filed under.
pub const KEYRING_SERVICE: &str = "idlegrid";
/// The fallback file in the data dir, used when it exists and written when no keyring is reachable.
pub const KEY_FILE: &str = "identity.key";
/// Set to `file` to keep the key in [`KEY_FILE`] and never touch the OS keyring.
pub const KEYSTORE_ENV: &str = "IDLEGRID_KEYSTORE";

const LOCK_FILE: &str = ".identity.lock";
pub const KEY_LEN: usize = 32;

/// This machine's secret key, and where it is kept.
#[derive(Clone, Debug)]
pub struct Identity {
    secret: SecretKey,
    kept_in: KeptIn,
}

/// Where an [`Identity`]'s secret key is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeptIn {
    /// The OS keyring, under service [`KEYRING_SERVICE`] and user `identity:DATA_DIR`.
    Keyring,
    /// A file readable only by its owner.
    File(PathBuf),
}

/// Where keys may be kept.
#[derive(Clone, Debug)]
pub enum KeyStore {
    /// The platform's keyring, falling back to a file where none is reachable.
    Native,
    /// This credential store (tests use `keyring_core::mock::Store`), falling back to a file.
    Store(Arc<keyring_core::api::CredentialStore>),
    /// Only the file: for tests and CI, which must never touch a person's keyring.
    FileOnly,
}

impl KeyStore {
    /// [`KeyStore::FileOnly`] when `IDLEGRID_KEYSTORE=file`, otherwise [`KeyStore::Native`].
    pub fn from_env() -> KeyStore {
        match std::env::var(KEYSTORE_ENV) {
            Ok(value) if value.trim().eq_ignore_ascii_case("file") => KeyStore::FileOnly,
            _ => KeyStore::Native,
        }
    }
}

// Keyring errors are written into the message rather than chained as a source: their Display already
// repeats the platform error they wrap, and the command prints the whole chain.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("cannot use the data dir {}", path.display())]
    DataDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read the {what} key file {}", path.display())]
    ReadKeyFile {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "the {what} key file {} is malformed ({reason}); it was left untouched: restore it from a \
         backup, or move it away to make a new {what} key",
        path.display()
    )]
    MalformedKeyFile {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("cannot write the {what} key file {}", path.display())]
    WriteKeyFile {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "cannot read the {what} from the OS keyring (service \"{KEYRING_SERVICE}\", user \
         \"{user}\"): {cause}; unlock the keyring and try again"
    )]
    KeyringRead {
        what: &'static str,
        user: String,
        cause: KeyringError,
    },
    #[error(
        "the OS keyring entry (service \"{KEYRING_SERVICE}\", user \"{user}\") holds {len} bytes, \
         not a {KEY_LEN}-byte {what} key; it was left untouched"
    )]
    MalformedKeyringEntry {
        what: &'static str,
        user: String,
        len: usize,
    },
}

/// Where a machine's data lives unless `--data` says otherwise: `~/.local/share/idlegrid` on Linux;
/// on Windows `%LOCALAPPDATA%\Idlegrid`, the per-user folder that does not roam (an identity must not
/// follow a person to a second PC, and the database and cache are this machine's); the platform's
/// data folder elsewhere; `./idlegrid-data` where there is none.
pub fn default_data_dir() -> PathBuf {
    data_dir_in(platform_data_dir())
}

/// The app's logs: `logs` in the default data dir, so that on Windows they too are under
/// `%LOCALAPPDATA%\Idlegrid` (on Linux this is `~/.local/share/idlegrid/logs`, as before).
pub fn default_logs_dir() -> PathBuf {
    default_data_dir().join("logs")
}

#[cfg(windows)]
fn platform_data_dir() -> Option<(PathBuf, &'static str)> {
    dirs::data_local_dir().map(|dir| (dir, "Idlegrid"))
}

#[cfg(not(windows))]
fn platform_data_dir() -> Option<(PathBuf, &'static str)> {
    dirs::data_dir().map(|dir| (dir, "idlegrid"))
}

/// The data dir named `name` inside the platform's folder, or the fallback without one.
fn data_dir_in(platform: Option<(PathBuf, &'static str)>) -> PathBuf {
    platform
        .map(|(dir, name)| dir.join(name))
        .unwrap_or_else(|| PathBuf::from("./idlegrid-data"))
}

/// One secret kept per data dir: its name in messages, its fallback file and keyring user, and how a
/// new one is made. The identity is one; the provider's payout account key (secp256k1) is another.
#[derive(Debug)]
pub struct KeySlot {
    pub what: &'static str,
    pub file: &'static str,
    /// The keyring user is `{user}:DATA_DIR`.
    pub user: &'static str,
    pub generate: fn() -> [u8; KEY_LEN],
}

/// The machine's identity (ed25519, the iroh key).
pub const IDENTITY: KeySlot = KeySlot {
    what: "identity",
    file: KEY_FILE,
    user: "identity",
    generate: || SecretKey::generate().to_bytes(),
};

/// A 32-byte secret of `slot` for `data_dir`: the one in its file if there is one, else the one in the
/// keyring, else a new one, saved in the keyring or (where none is reachable) in the file.
///
/// An existing key is never replaced: a malformed file or keyring entry, or a keyring that holds an
/// entry but refuses to read it, is an error.
pub fn load_or_create_key(
    data_dir: &Path,
    store: &KeyStore,
    slot: &KeySlot,
) -> Result<([u8; KEY_LEN], KeptIn), IdentityError> {
    create_private_dir(data_dir).map_err(|source| IdentityError::DataDir {
        path: data_dir.to_owned(),
        source,
    })?;
    // Canonical, so `--data x` and `--data ./x` are one identity and one keyring entry.
    let data_dir = fs::canonicalize(data_dir).map_err(|source| IdentityError::DataDir {
        path: data_dir.to_owned(),
        source,
    })?;
    // Two processes starting at once on a new data dir must not each make a key.
    let _lock = lock(&data_dir)?;

    let key_file = data_dir.join(slot.file);
    if let Some(secret) = read_key_file(&key_file, slot)? {
        return Ok((secret, KeptIn::File(key_file)));
    }

    let user = keyring_user(slot, &data_dir);
    let entry = match open_entry(store, &user) {
        Ok(entry) => entry,
        Err(reason) => return create_in_file(&key_file, slot, &reason),
    };
    match entry.get_secret() {
        Ok(bytes) => return Ok((key_from_keyring(&bytes, slot, &user)?, KeptIn::Keyring)),
        Err(KeyringError::NoEntry) => {}
        Err(KeyringError::NoDefaultStore) => {
            return create_in_file(&key_file, slot, &KeyringError::NoDefaultStore.to_string());
        }
        // The entry may exist behind a locked keyring: a new key in a file would fork the identity.
        Err(cause) => {
            return Err(IdentityError::KeyringRead {
                what: slot.what,
                user,
                cause,
            });
        }
    }

    let secret = (slot.generate)();
    match save_in_keyring(&entry, &secret) {
        Ok(()) => Ok((secret, KeptIn::Keyring)),
        Err(reason) => {
            // A store that accepted the key but gives back something else must not be left
            // holding a key nobody uses; failing to delete it is harmless, the file wins.
            let _ = entry.delete_credential();
            write_key_file(&key_file, slot, &secret)?;
            warn_kept_in_file(&key_file, slot, &reason);
            Ok((secret, KeptIn::File(key_file)))
        }
    }
}

impl Identity {
    /// The identity of `data_dir` (see [`load_or_create_key`]).
    pub fn load_or_create(data_dir: &Path, store: &KeyStore) -> Result<Identity, IdentityError> {
        let (bytes, kept_in) = load_or_create_key(data_dir, store, &IDENTITY)?;
        Ok(Identity {
            secret: SecretKey::from_bytes(&bytes),
            kept_in,
        })
    }

    pub fn secret_key(&self) -> &SecretKey {
        &self.secret
    }

    /// The public key, which is also the iroh endpoint id.
    pub fn public(&self) -> PublicKey {
        self.secret.public()
    }

    pub fn kept_in(&self) -> &KeptIn {
        &self.kept_in
    }
}

fn keyring_user(slot: &KeySlot, canonical_data_dir: &Path) -> String {
    format!("{}:{}", slot.user, canonical_data_dir.display())
}

/// The keyring entry for `user`, or why no keyring can hold it.
fn open_entry(store: &KeyStore, user: &str) -> Result<Entry, String> {
    match store {
        KeyStore::FileOnly => Err(format!("{KEYSTORE_ENV}=file")),
        KeyStore::Store(store) => {
            Entry::new_in_store(store, KEYRING_SERVICE, user).map_err(|e| e.to_string())
        }
        KeyStore::Native => {
            // The `keyring` crate connects to the platform store once per process and makes it the
            // default; its error says why (no session bus, no Secret Service, ...).
            if let Err(e) = keyring::Entry::store_status() {
                return Err(e.to_string());
            }
            keyring::Entry::new(KEYRING_SERVICE, user)
                .map(|entry| entry.inner)
                .map_err(|e| e.to_string())
        }
    }
}

fn key_from_keyring(
    bytes: &[u8],
    slot: &KeySlot,
    user: &str,
) -> Result<[u8; KEY_LEN], IdentityError> {
    bytes
        .try_into()
        .map_err(|_| IdentityError::MalformedKeyringEntry {
            what: slot.what,
            user: user.to_owned(),
            len: bytes.len(),
        })
}

/// Saves `secret` and reads it back, so a store that only pretends to keep it is caught now rather
/// than at the next start, when the key would be gone.
fn save_in_keyring(entry: &Entry, secret: &[u8; KEY_LEN]) -> Result<(), String> {
    entry.set_secret(secret).map_err(|e| e.to_string())?;
    match entry.get_secret() {
        Ok(bytes) if bytes == secret => Ok(()),
        Ok(_) => Err("the keyring gave back a different key than the one saved".to_owned()),
        Err(e) => Err(format!(
            "the keyring did not give back the key just saved: {e}"
        )),
    }
}

fn create_in_file(
    key_file: &Path,
    slot: &KeySlot,
    reason: &str,
) -> Result<([u8; KEY_LEN], KeptIn), IdentityError> {
    let secret = (slot.generate)();
    write_key_file(key_file, slot, &secret)?;
    warn_kept_in_file(key_file, slot, reason);
    Ok((secret, KeptIn::File(key_file.to_owned())))
}

fn warn_kept_in_file(key_file: &Path, slot: &KeySlot, reason: &str) {
    tracing::warn!(
        "no OS keyring was reachable ({reason}); this machine's {} key is in {}, readable only \
         by you",
        slot.what,
        key_file.display()
    );
}

/// The key in `path`, or `None` if there is no such file.
fn read_key_file(path: &Path, slot: &KeySlot) -> Result<Option<[u8; KEY_LEN]>, IdentityError> {
    let text = match fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(IdentityError::ReadKeyFile {
                what: slot.what,
                path: path.to_owned(),
                source,
            });
        }
    };
    let malformed = |reason: &str| IdentityError::MalformedKeyFile {
        what: slot.what,
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let hex = text.trim_ascii();
    if hex.len() != 2 * KEY_LEN {
        return Err(malformed(&format!(
            "{} characters, not {} hex digits",
            hex.len(),
            2 * KEY_LEN
        )));
    }
    let mut bytes = [0u8; KEY_LEN];
    for (byte, pair) in bytes.iter_mut().zip(hex.chunks_exact(2)) {
        let digit = |c: u8| (c as char).to_digit(16);
        match (digit(pair[0]), digit(pair[1])) {
            (Some(high), Some(low)) => *byte = (high * 16 + low) as u8,
            _ => return Err(malformed("not hex")),
        }
    }
    warn_if_others_can_read(path, slot);
    Ok(Some(bytes))
}

#[cfg(unix)]
fn warn_if_others_can_read(path: &Path, slot: &KeySlot) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(metadata) = fs::metadata(path) {
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                "the {} key file {} can be read by other users (mode {mode:o}); run: chmod 600 {}",
                slot.what,
                path.display(),
                path.display()
            );
        }
    }
}

#[cfg(windows)]
fn warn_if_others_can_read(path: &Path, slot: &KeySlot) {
    use crate::owner_only::{current_user_sid, read_dacl};
    if let (Ok(dacl), Ok(owner)) = (read_dacl(path), current_user_sid())
        && !dacl.is_owner_only(&owner)
    {
        tracing::warn!(
            "the {} key file {} can be read by other users; run: icacls \"{}\" /inheritance:r \
             /grant:r \"%USERNAME%\":F",
            slot.what,
            path.display(),
            path.display()
        );
    }
}

#[cfg(not(any(unix, windows)))]
fn warn_if_others_can_read(_path: &Path, _slot: &KeySlot) {}

/// Writes the key so that `path` is either absent or whole, and never readable by anyone else, not
/// even for a moment: the temporary file is created with mode 0600 (on Windows with an owner-only
/// DACL), synced, then renamed.
fn write_key_file(
    path: &Path,
    slot: &KeySlot,
    secret: &[u8; KEY_LEN],
) -> Result<(), IdentityError> {
    let error = |source| IdentityError::WriteKeyFile {
        what: slot.what,
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let partial = dir.join(format!(".{}.{}.partial", slot.file, std::process::id()));
    let mut text = String::with_capacity(2 * KEY_LEN + 1);
    for byte in secret {
        text.push_str(&format!("{byte:02x}"));
    }
    text.push('\n');
    let written = (|| {
        // A leftover from a crash would keep its old mode through create(); start afresh.
        match fs::remove_file(&partial) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut file = create_private(&partial)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        drop(file);
        fs::rename(&partial, path)?;
        sync_dir(dir)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&partial);
    }
    written.map_err(error)
}

#[cfg(unix)]
fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

// Windows: files with secrets are made by `create_private`; the lock file holds none.
#[cfg(not(unix))]
fn private_options() -> OpenOptions {
    OpenOptions::new()
}

/// Creates `path`, which must not exist, readable by its owner alone from the start.
#[cfg(not(windows))]
fn create_private(path: &Path) -> io::Result<File> {
    private_options().write(true).create_new(true).open(path)
}

#[cfg(windows)]
fn create_private(path: &Path) -> io::Result<File> {
    crate::owner_only::create_new(path)
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Makes the rename durable: without it a crash can bring back a directory with no key file, and the
/// next start would make a new identity.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

fn lock(data_dir: &Path) -> Result<File, IdentityError> {
    let path = data_dir.join(LOCK_FILE);
    let file = private_options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|source| IdentityError::DataDir {
            path: path.clone(),
            source,
        })?;
    file.lock()
        .map_err(|source| IdentityError::DataDir { path, source })?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use keyring_core::api::{CredentialApi, CredentialStoreApi};
    use keyring_core::mock;

    use super::*;

    fn mock_store() -> KeyStore {
        KeyStore::Store(mock::Store::new().unwrap())
    }

    fn entry(store: &KeyStore, data_dir: &Path) -> Entry {
        let KeyStore::Store(store) = store else {
            panic!("not a store")
        };
        let user = keyring_user(&IDENTITY, &fs::canonicalize(data_dir).unwrap());
        Entry::new_in_store(store, KEYRING_SERVICE, &user).unwrap()
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// Only its owner can read `path`: mode 0600, or on Windows a protected DACL granting the
    /// current user alone.
    fn assert_owner_only(path: &Path) {
        #[cfg(unix)]
        assert_eq!(mode(path), 0o600);
        #[cfg(windows)]
        {
            let dacl = crate::owner_only::read_dacl(path).unwrap();
            let owner = crate::owner_only::current_user_sid().unwrap();
            assert!(dacl.is_owner_only(&owner), "{dacl:?}");
            // Wine keeps only the Unix mode, which reads back unprotected (see owner_only).
            if crate::os_readings::wine_version().is_none() {
                assert!(dacl.protected, "{dacl:?}");
                assert_eq!(dacl.grants.map(|g| g.len()), Some(1));
            }
        }
    }

    #[test]
    fn identity_is_created_once_and_the_same_on_the_next_load() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("new/data");
        let store = mock_store();
        let first = Identity::load_or_create(&data, &store).unwrap();
        assert_eq!(first.kept_in(), &KeptIn::Keyring);
        assert!(!data.join(KEY_FILE).exists());
        let again = Identity::load_or_create(&data, &store).unwrap();
        assert_eq!(again.public(), first.public());
        assert_eq!(again.secret_key().to_bytes(), first.secret_key().to_bytes());
        assert_eq!(first.public(), first.secret_key().public());
        assert_eq!(
            entry(&store, &data).get_secret().unwrap(),
            first.secret_key().to_bytes()
        );
    }

    #[test]
    fn one_data_dir_is_one_identity_however_it_is_spelled() {
        let dir = tempfile::tempdir().unwrap();
        let store = mock_store();
        let plain = Identity::load_or_create(&dir.path().join("data"), &store).unwrap();
        let dotted = Identity::load_or_create(&dir.path().join("./data/../data/."), &store);
        assert_eq!(dotted.unwrap().public(), plain.public());
    }

    #[test]
    fn two_data_dirs_are_two_identities() {
        let dir = tempfile::tempdir().unwrap();
        let store = mock_store();
        let a = Identity::load_or_create(&dir.path().join("a"), &store).unwrap();
        let b = Identity::load_or_create(&dir.path().join("b"), &store).unwrap();
        assert_ne!(a.public(), b.public());
        assert_eq!(
            Identity::load_or_create(&dir.path().join("a"), &store)
                .unwrap()
                .public(),
            a.public()
        );
    }

    #[test]
    fn file_only_keeps_the_key_in_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let first = Identity::load_or_create(&data, &KeyStore::FileOnly).unwrap();
        let file = fs::canonicalize(&data).unwrap().join(KEY_FILE);
        assert_eq!(first.kept_in(), &KeptIn::File(file.clone()));
        assert_owner_only(&file);
        #[cfg(unix)]
        assert_eq!(mode(&data), 0o700);
        let text = fs::read_to_string(&file).unwrap();
        assert_eq!(text.len(), 65);
        assert!(text.ends_with('\n'));
        let again = Identity::load_or_create(&data, &KeyStore::FileOnly).unwrap();
        assert_eq!(again.public(), first.public());
        // Nothing but the key and the lock is left behind.
        let mut names: Vec<_> = fs::read_dir(&data)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, [LOCK_FILE, KEY_FILE]);
    }

    /// A keyring that can be reached but does not keep anything: it refuses to (like a Secret
    /// Service with no default collection and nobody to answer its prompt), or it says it did and
    /// then has nothing to give back.
    #[derive(Debug, Clone, Copy)]
    struct Keepless {
        refuses: bool,
    }

    impl CredentialApi for Keepless {
        fn set_secret(&self, _: &[u8]) -> keyring_core::Result<()> {
            if self.refuses {
                Err(KeyringError::NoStorageAccess("prompt dismissed".into()))
            } else {
                Ok(())
            }
        }
        fn get_secret(&self) -> keyring_core::Result<Vec<u8>> {
            Err(KeyringError::NoEntry)
        }
        fn delete_credential(&self) -> keyring_core::Result<()> {
            Err(KeyringError::NoEntry)
        }
        fn get_credential(&self) -> keyring_core::Result<Option<Arc<keyring_core::Credential>>> {
            Err(KeyringError::NoEntry)
        }
        fn get_specifiers(&self) -> Option<(String, String)> {
            None
        }
        fn as_any(&self) -> &dyn std::any::Any {
            self
        }
    }

    impl CredentialStoreApi for Keepless {
        fn vendor(&self) -> String {
            "keepless test store".to_owned()
        }
        fn id(&self) -> String {
            format!("{self:?}")
        }
        fn build(
            &self,
            _: &str,
            _: &str,
            _: Option<&HashMap<&str, &str>>,
        ) -> keyring_core::Result<Entry> {
            Ok(Entry::new_with_credential(Arc::new(*self)))
        }
        fn as_any(&self) -> &dyn std::any::Any {
            self
        }
    }

    /// A store that cannot even make an entry, like a platform with no keyring service.
    #[derive(Debug)]
    struct Unreachable;

    impl CredentialStoreApi for Unreachable {
        fn vendor(&self) -> String {
            "unreachable test store".to_owned()
        }
        fn id(&self) -> String {
            "unreachable".to_owned()
        }
        fn build(
            &self,
            _: &str,
            _: &str,
            _: Option<&HashMap<&str, &str>>,
        ) -> keyring_core::Result<Entry> {
            Err(KeyringError::PlatformFailure("no session bus".into()))
        }
        fn as_any(&self) -> &dyn std::any::Any {
            self
        }
    }

    #[test]
    fn an_unreachable_keyring_falls_back_to_a_private_file() {
        for store in [
            KeyStore::Store(Arc::new(Keepless { refuses: true })),
            KeyStore::Store(Arc::new(Keepless { refuses: false })),
            KeyStore::Store(Arc::new(Unreachable)),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let first = Identity::load_or_create(dir.path(), &store).unwrap();
            let file = fs::canonicalize(dir.path()).unwrap().join(KEY_FILE);
            assert_eq!(first.kept_in(), &KeptIn::File(file.clone()));
            assert_owner_only(&file);
            let again = Identity::load_or_create(dir.path(), &store).unwrap();
            assert_eq!(again.public(), first.public());
            assert_eq!(again.kept_in(), first.kept_in());
        }
    }

    #[test]
    fn the_file_wins_over_the_keyring() {
        let dir = tempfile::tempdir().unwrap();
        let store = mock_store();
        let kept = Identity::load_or_create(dir.path(), &KeyStore::FileOnly).unwrap();
        let loaded = Identity::load_or_create(dir.path(), &store).unwrap();
        assert_eq!(loaded.public(), kept.public());
        assert!(matches!(loaded.kept_in(), KeptIn::File(_)));
        assert!(matches!(
            entry(&store, dir.path()).get_secret(),
            Err(KeyringError::NoEntry)
        ));
    }

    #[test]
    fn a_corrupt_key_file_is_an_error_naming_it_and_is_left_alone() {
        for corrupt in [&b"not a key\n"[..], &[b'g'; 64], &[b'a'; 63], &[0u8; 32]] {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join(KEY_FILE);
            fs::write(&file, corrupt).unwrap();
            let error = Identity::load_or_create(dir.path(), &mock_store()).unwrap_err();
            assert!(
                matches!(error, IdentityError::MalformedKeyFile { .. }),
                "{error:?}"
            );
            let message = error.to_string();
            assert!(message.contains(&*file.file_name().unwrap().to_string_lossy()));
            assert!(
                message.contains(&fs::canonicalize(&file).unwrap().display().to_string()),
                "{message}"
            );
            assert_eq!(fs::read(&file).unwrap(), corrupt);
        }
    }

    #[test]
    fn a_wrong_length_keyring_entry_is_an_error_and_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = mock_store();
        entry(&store, dir.path()).set_secret(b"short").unwrap();
        let error = Identity::load_or_create(dir.path(), &store).unwrap_err();
        assert!(
            matches!(error, IdentityError::MalformedKeyringEntry { len: 5, .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("identity:"), "{error}");
        assert_eq!(entry(&store, dir.path()).get_secret().unwrap(), b"short");
        assert!(!dir.path().join(KEY_FILE).exists());
    }

    #[test]
    fn a_keyring_that_refuses_to_read_an_entry_is_an_error_not_a_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = mock_store();
        let first = Identity::load_or_create(dir.path(), &store).unwrap();
        let locked = entry(&store, dir.path());
        let cred: &mock::Cred = locked.as_any().downcast_ref().unwrap();
        cred.set_error(KeyringError::NoStorageAccess("collection is locked".into()));
        let error = Identity::load_or_create(dir.path(), &store).unwrap_err();
        assert!(
            matches!(error, IdentityError::KeyringRead { .. }),
            "{error:?}"
        );
        assert!(
            error.to_string().contains("collection is locked"),
            "{error}"
        );
        assert!(!dir.path().join(KEY_FILE).exists());
        // Unlocked again, the same identity comes back.
        let again = Identity::load_or_create(dir.path(), &store).unwrap();
        assert_eq!(again.public(), first.public());
    }

    #[test]
    fn keystore_from_env_reads_the_variable() {
        // Read-only: setting variables races other tests in this process.
        let expected =
            std::env::var(KEYSTORE_ENV).is_ok_and(|v| v.trim().eq_ignore_ascii_case("file"));
        assert_eq!(matches!(KeyStore::from_env(), KeyStore::FileOnly), expected);
    }

    #[cfg(not(windows))]
    #[test]
    fn default_data_dir_is_idlegrid_in_the_platform_data_dir() {
        match dirs::data_dir() {
            Some(platform) => assert_eq!(default_data_dir(), platform.join("idlegrid")),
            None => assert_eq!(default_data_dir(), PathBuf::from("./idlegrid-data")),
        }
        assert_eq!(default_logs_dir(), default_data_dir().join("logs"));
    }

    /// Data and logs under `%LOCALAPPDATA%\Idlegrid`, not the roaming `%APPDATA%`.
    #[cfg(windows)]
    #[test]
    fn windows_data_and_logs_are_in_local_app_data() {
        let local = PathBuf::from(std::env::var_os("LOCALAPPDATA").expect("LOCALAPPDATA is set"));
        assert_eq!(default_data_dir(), local.join("Idlegrid"));
        assert_eq!(default_logs_dir(), local.join("Idlegrid").join("logs"));
        let roaming = PathBuf::from(std::env::var_os("APPDATA").expect("APPDATA is set"));
        assert!(!default_data_dir().starts_with(&roaming), "{roaming:?}");
    }

    /// Windows' own store: the key goes to Credential Manager (no file), comes back the same, and
    /// is removed here. Only under Wine, whose prefix is the test's: on a person's Windows it would
    /// be their Credential Manager.
    #[cfg(windows)]
    #[test]
    fn on_windows_the_key_is_kept_in_credential_manager() {
        let Some(version) = crate::os_readings::wine_version() else {
            eprintln!(
                "skipped: Credential Manager is tested under Wine only (a person's store here)"
            );
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let first = Identity::load_or_create(dir.path(), &KeyStore::Native).unwrap();
        assert_eq!(first.kept_in(), &KeptIn::Keyring, "Wine {version}");
        assert!(!dir.path().join(KEY_FILE).exists());
        let again = Identity::load_or_create(dir.path(), &KeyStore::Native).unwrap();
        assert_eq!(again.public(), first.public());
        let user = keyring_user(&IDENTITY, &fs::canonicalize(dir.path()).unwrap());
        let entry = open_entry(&KeyStore::Native, &user).unwrap();
        assert_eq!(entry.get_secret().unwrap(), first.secret_key().to_bytes());
        entry.delete_credential().unwrap();
    }

    #[test]
    fn without_a_platform_data_dir_the_data_is_in_the_working_dir() {
        assert_eq!(data_dir_in(None), PathBuf::from("./idlegrid-data"));
    }
}
