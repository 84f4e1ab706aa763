//! Owner-only files on Windows: created with a protected DACL of one entry, full access for the user
//! this process runs as, so that neither the folder's inherited entries (Users, Administrators,
//! SYSTEM) nor anyone else can read them, not even for a moment. Wine 8 keeps a file's DACL only as
//! its Unix mode: one given at creation makes the file 0600-like, and reads back as the owner and
//! SYSTEM, unprotected; a DACL set on an existing file is accepted and dropped, hence creation. Where Linux uses mode 0600, Windows needs this: a file in
//! `%LOCALAPPDATA%` is private by inheritance only as long as nobody loosened the folder.
//!
//! The app's pipe and single-instance mutex are made with the same descriptor.
//!
//! Also reads a file's DACL back, so the key file's reader can warn when others may read it and
//! tests can check what was written.

use std::ffi::c_void;
use std::fs::File;
use std::io;
use std::os::windows::ffi::OsStrExt;
use std::os::windows::io::FromRawHandle;
use std::path::Path;

use windows_sys::Win32::Foundation::{
    CloseHandle, GENERIC_READ, GENERIC_WRITE, HANDLE, INVALID_HANDLE_VALUE, LocalFree,
};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, GetNamedSecurityInfoW, SE_FILE_OBJECT,
};
use windows_sys::Win32::Security::{
    ACE_HEADER, ACL, ACL_REVISION, AddAccessAllowedAce, DACL_SECURITY_INFORMATION, GetAce,
    GetLengthSid, GetSecurityDescriptorControl, GetTokenInformation, InitializeAcl,
    InitializeSecurityDescriptor, PSECURITY_DESCRIPTOR, PSID, SE_DACL_PROTECTED,
    SECURITY_ATTRIBUTES, SECURITY_DESCRIPTOR, SetSecurityDescriptorControl,
    SetSecurityDescriptorDacl, SetSecurityDescriptorOwner, TOKEN_QUERY, TOKEN_USER, TokenUser,
};
use windows_sys::Win32::Storage::FileSystem::{
    CREATE_NEW, CreateFileW, FILE_ALL_ACCESS, FILE_ATTRIBUTE_NORMAL,
};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

/// `ACCESS_ALLOWED_ACE_TYPE` and `SECURITY_DESCRIPTOR_REVISION` (winnt.h); windows-sys files them
/// under a feature of their own.
const ACCESS_ALLOWED: u8 = 0;
const SECURITY_DESCRIPTOR_REVISION: u32 = 1;

/// One entry of a DACL, as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The trustee's SID as a string ("S-1-5-21-…").
    pub sid: String,
    /// `false` for a deny entry (or any type other than access-allowed).
    pub allowed: bool,
    pub mask: u32,
}

/// A file's DACL as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dacl {
    /// Inherited entries from the folder are blocked.
    pub protected: bool,
    /// `None` for a NULL DACL, which grants everyone everything.
    pub grants: Option<Vec<Grant>>,
}

/// The operating system itself (LocalSystem), which reads every file whatever its DACL says, as
/// root does on Linux: an entry for it lets no other person in.
pub const LOCAL_SYSTEM: &str = "S-1-5-18";

impl Dacl {
    /// Whether no one but `owner_sid` (and the system itself) is granted anything.
    pub fn is_owner_only(&self, owner_sid: &str) -> bool {
        self.grants.as_ref().is_some_and(|grants| {
            grants
                .iter()
                .all(|grant| !grant.allowed || grant.sid == owner_sid || grant.sid == LOCAL_SYSTEM)
        })
    }
}

/// A security descriptor whose protected DACL grants full access to the current user and nobody
/// else: what a file (or pipe) is created with, so it is private from its first instant.
pub struct OwnerOnly {
    descriptor: Box<SECURITY_DESCRIPTOR>,
    /// The ACL and the SID it holds a copy of; the descriptor points at the ACL's heap buffer.
    _acl: Vec<u32>,
    /// The user's SID, which the descriptor names as owner (pointing into its heap buffer): not the
    /// token's default owner, which may be a group (Wine's is "Domain Users").
    _owner: TokenUserSid,
}

// SAFETY: the descriptor only points into `_acl` and `_owner`, owned alongside it and never changed
// after `new`.
unsafe impl Send for OwnerOnly {}
unsafe impl Sync for OwnerOnly {}

impl OwnerOnly {
    pub fn new() -> io::Result<OwnerOnly> {
        let user = TokenUserSid::current()?;
        let sid = user.sid();
        // SAFETY: `sid` points into `user`'s heap buffer, kept in the result as `_owner`.
        let sid_len = unsafe { GetLengthSid(sid) };
        // One ACL header, one ACE whose SidStart u32 is replaced by the SID (as MSDN sizes it).
        let acl_len =
            size_of::<ACL>() + size_of::<ACE_HEADER>() + size_of::<u32>() + sid_len as usize;
        // u32 words keep the ACL aligned as InitializeAcl requires.
        let mut acl = vec![0u32; acl_len.div_ceil(4)];
        let acl_ptr = acl.as_mut_ptr().cast::<ACL>();
        let byte_len = u32::try_from(acl.len() * 4).map_err(io::Error::other)?;
        let mut descriptor = Box::new(SECURITY_DESCRIPTOR::default());
        let descriptor_ptr: PSECURITY_DESCRIPTOR = (&raw mut *descriptor).cast();
        // SAFETY: `acl` is a writable, aligned buffer of `byte_len` bytes; `sid` is a valid SID (the
        // ACE copies it); the descriptor is a writable SECURITY_DESCRIPTOR that keeps pointing at
        // `acl`'s buffer, which moving the Vec does not move.
        unsafe {
            if InitializeAcl(acl_ptr, byte_len, ACL_REVISION) == 0
                || AddAccessAllowedAce(acl_ptr, ACL_REVISION, FILE_ALL_ACCESS, sid) == 0
                || InitializeSecurityDescriptor(descriptor_ptr, SECURITY_DESCRIPTOR_REVISION) == 0
                || SetSecurityDescriptorOwner(descriptor_ptr, sid, 0) == 0
                || SetSecurityDescriptorDacl(descriptor_ptr, 1, acl_ptr, 0) == 0
                || SetSecurityDescriptorControl(
                    descriptor_ptr,
                    SE_DACL_PROTECTED,
                    SE_DACL_PROTECTED,
                ) == 0
            {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(OwnerOnly {
            descriptor,
            _acl: acl,
            _owner: user,
        })
    }

    /// Attributes for creating an object with this descriptor; valid while `self` lives.
    pub fn attributes(&self) -> SECURITY_ATTRIBUTES {
        SECURITY_ATTRIBUTES {
            nLength: size_of::<SECURITY_ATTRIBUTES>() as u32,
            lpSecurityDescriptor: (&raw const *self.descriptor).cast_mut().cast(),
            bInheritHandle: 0,
        }
    }
}

/// Creates `path`, which must not exist, for writing, readable and writable by the current user
/// alone from the moment it exists.
pub fn create_new(path: &Path) -> io::Result<File> {
    let owner_only = OwnerOnly::new()?;
    let attributes = owner_only.attributes();
    let wide = wide(path.as_os_str());
    // SAFETY: `wide` is NUL-terminated; `attributes` points at `owner_only`, alive for the call.
    let handle = unsafe {
        CreateFileW(
            wide.as_ptr(),
            GENERIC_READ | GENERIC_WRITE,
            0,
            &attributes,
            CREATE_NEW,
            FILE_ATTRIBUTE_NORMAL,
            std::ptr::null_mut(),
        )
    };
    if handle == INVALID_HANDLE_VALUE {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh handle owned by nobody else.
    Ok(unsafe { File::from_raw_handle(handle) })
}

/// `path`'s DACL as the system reports it.
pub fn read_dacl(path: &Path) -> io::Result<Dacl> {
    let wide = wide(path.as_os_str());
    let mut dacl: *mut ACL = std::ptr::null_mut();
    let mut descriptor: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
    // SAFETY: out-pointers are valid; the descriptor is freed below with LocalFree, and `dacl`
    // points into it.
    let status = unsafe {
        GetNamedSecurityInfoW(
            wide.as_ptr(),
            SE_FILE_OBJECT,
            DACL_SECURITY_INFORMATION,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &mut dacl,
            std::ptr::null_mut(),
            &mut descriptor,
        )
    };
    win32_result(status)?;
    let _free = LocalMemory(descriptor);
    let mut control = 0u16;
    let mut revision = 0u32;
    // SAFETY: `descriptor` came from GetNamedSecurityInfoW and is alive until `_free` drops.
    if unsafe { GetSecurityDescriptorControl(descriptor, &mut control, &mut revision) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let grants = if dacl.is_null() {
        None
    } else {
        // SAFETY: a non-null DACL from the descriptor above.
        Some(unsafe { grants(dacl)? })
    };
    Ok(Dacl {
        protected: control & SE_DACL_PROTECTED != 0,
        grants,
    })
}

/// The SID of the user this process runs as, as a string.
pub fn current_user_sid() -> io::Result<String> {
    let user = TokenUserSid::current()?;
    // SAFETY: the SID lives in `user` for this call.
    unsafe { sid_string(user.sid()) }
}

/// Every entry of `dacl`.
///
/// # Safety
/// `dacl` must point to a valid ACL.
unsafe fn grants(dacl: *const ACL) -> io::Result<Vec<Grant>> {
    // SAFETY: the caller vouches for `dacl`.
    let count = unsafe { (*dacl).AceCount };
    let mut grants = Vec::with_capacity(usize::from(count));
    for index in 0..u32::from(count) {
        let mut ace: *mut c_void = std::ptr::null_mut();
        // SAFETY: `index` is below the ACL's count; `ace` then points into the ACL.
        if unsafe { GetAce(dacl, index, &mut ace) } == 0 {
            return Err(io::Error::last_os_error());
        }
        let header = ace.cast::<ACE_HEADER>();
        // SAFETY: every ACE starts with a header; access-allowed and access-denied ACEs share the
        // layout header, mask, SID.
        let (kind, mask, sid) = unsafe {
            let mask = *ace.cast::<u8>().add(size_of::<ACE_HEADER>()).cast::<u32>();
            let sid = ace
                .cast::<u8>()
                .add(size_of::<ACE_HEADER>() + size_of::<u32>())
                .cast::<c_void>();
            ((*header).AceType, mask, sid)
        };
        grants.push(Grant {
            // SAFETY: the SID sits inside the ACE.
            sid: unsafe { sid_string(sid)? },
            allowed: kind == ACCESS_ALLOWED,
            mask,
        });
    }
    Ok(grants)
}

/// A SID in its string form (`S-1-5-21-…`).
///
/// # Safety
/// `sid` must point to a valid SID.
pub unsafe fn sid_string(sid: PSID) -> io::Result<String> {
    let mut text: *mut u16 = std::ptr::null_mut();
    // SAFETY: the caller vouches for `sid`; `text` is freed with LocalFree below.
    unsafe {
        if ConvertSidToStringSidW(sid, &mut text) == 0 {
            return Err(io::Error::last_os_error());
        }
        let _free = LocalMemory(text.cast());
        let len = (0..).take_while(|&i| *text.add(i) != 0).count();
        Ok(String::from_utf16_lossy(std::slice::from_raw_parts(
            text, len,
        )))
    }
}

/// The `TOKEN_USER` of this process's token, which holds the user's SID.
struct TokenUserSid {
    /// u64 words: TOKEN_USER holds a pointer and must be aligned for it.
    buffer: Vec<u64>,
}

impl TokenUserSid {
    fn current() -> io::Result<TokenUserSid> {
        let mut token: HANDLE = std::ptr::null_mut();
        // SAFETY: the pseudo-handle of this process needs no closing; `token` is closed below.
        if unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) } == 0 {
            return Err(io::Error::last_os_error());
        }
        let read = (|| {
            let mut needed = 0u32;
            // SAFETY: a size query (null buffer, length 0) fails and sets `needed`.
            unsafe { GetTokenInformation(token, TokenUser, std::ptr::null_mut(), 0, &mut needed) };
            let mut buffer = vec![0u64; (needed as usize).div_ceil(8)];
            // SAFETY: `buffer` holds at least `needed` bytes.
            if unsafe {
                GetTokenInformation(
                    token,
                    TokenUser,
                    buffer.as_mut_ptr().cast(),
                    needed,
                    &mut needed,
                )
            } == 0
            {
                return Err(io::Error::last_os_error());
            }
            Ok(TokenUserSid { buffer })
        })();
        // SAFETY: `token` was opened above and is not used after this.
        unsafe { CloseHandle(token) };
        read
    }

    fn sid(&self) -> PSID {
        // SAFETY: the buffer was filled by GetTokenInformation(TokenUser), so it starts with a
        // TOKEN_USER whose SID points into the same buffer.
        unsafe { (*self.buffer.as_ptr().cast::<TOKEN_USER>()).User.Sid }
    }
}

/// Memory the system allocated for us with LocalAlloc, freed on drop.
struct LocalMemory(*mut c_void);

impl Drop for LocalMemory {
    fn drop(&mut self) {
        // SAFETY: the pointer came from an API that allocates with LocalAlloc, and is freed once.
        unsafe { LocalFree(self.0) };
    }
}

/// `text` as Windows wants it: UTF-16 with a NUL at the end.
pub fn wide(text: &std::ffi::OsStr) -> Vec<u16> {
    text.encode_wide().chain([0]).collect()
}

fn win32_result(status: u32) -> io::Result<()> {
    match status {
        0 => Ok(()),
        code => Err(io::Error::from_raw_os_error(code as i32)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_created_owner_only_grants_its_owner_alone() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        let mut created = create_new(&file).unwrap();
        std::io::Write::write_all(&mut created, b"x").unwrap();
        drop(created);
        let owner = current_user_sid().unwrap();
        assert!(owner.starts_with("S-1-5-21-"), "{owner}");
        let dacl = read_dacl(&file).unwrap();
        assert!(dacl.is_owner_only(&owner), "{dacl:?}");
        let grants = dacl.grants.as_deref().unwrap_or_default();
        assert!(
            grants.iter().all(|g| g.sid != "S-1-1-0"),
            "Everyone: {dacl:?}"
        );
        match crate::os_readings::wine_version() {
            None => assert_eq!(
                dacl,
                Dacl {
                    protected: true,
                    grants: Some(vec![Grant {
                        sid: owner.clone(),
                        allowed: true,
                        mask: FILE_ALL_ACCESS,
                    }]),
                }
            ),
            Some(wine) => {
                eprintln!("{wine} keeps the DACL as the Unix mode only: it reads back as {dacl:?}")
            }
        }
        assert_eq!(std::fs::read(&file).unwrap(), b"x", "the owner reads it");
        // Never over an existing file.
        assert_eq!(
            create_new(&file).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
    }

    #[test]
    fn owner_only_means_no_one_else_is_allowed() {
        let grant = |sid: &str, allowed| Grant {
            sid: sid.into(),
            allowed,
            mask: FILE_ALL_ACCESS,
        };
        let dacl = |grants| Dacl {
            protected: true,
            grants,
        };
        let me = "S-1-5-21-1-2-3-1000";
        assert!(dacl(Some(vec![grant(me, true)])).is_owner_only(me));
        assert!(dacl(Some(vec![grant(LOCAL_SYSTEM, true), grant(me, true)])).is_owner_only(me));
        // Administrators (S-1-5-32-544), as a folder's inherited entries grant, are other people.
        assert!(!dacl(Some(vec![grant("S-1-5-32-544", true), grant(me, true)])).is_owner_only(me));
        // Everyone (S-1-1-0) denied is still owner-only; Everyone allowed is not.
        assert!(dacl(Some(vec![grant("S-1-1-0", false), grant(me, true)])).is_owner_only(me));
        assert!(!dacl(Some(vec![grant(me, true), grant("S-1-1-0", true)])).is_owner_only(me));
        // A NULL DACL lets everyone in.
        assert!(!dacl(None).is_owner_only(me));
    }
}
