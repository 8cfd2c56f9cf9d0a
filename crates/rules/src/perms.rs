//! Who else can change (or read) the files a firewall is built from.
//!
//! Run as root, xdpwall does what its config says to every packet, so a
//! config or set file that other users can write is a way around the
//! firewall — the check `sshd` (StrictModes) and `sudo` make on their own
//! files. These are warnings, not errors: the files are still used.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::model::{Config, SetSource};

/// What a file is to the firewall (the config's rules may be worth hiding;
/// set files are usually public lists).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The config file.
    Config,
    /// A set file.
    SetFile,
}

/// The facts about one file (or its directory) the checks need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// Owner uid.
    pub uid: u32,
}

impl Owner {
    fn of(path: &Path) -> Option<Self> {
        let meta = std::fs::metadata(path).ok()?;
        Some(Self {
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
        })
    }
}

/// Whom `group_bit` and `other_bit` of `mode` let in, if anyone.
fn who(mode: u32, group_bit: u32, other_bit: u32) -> Option<&'static str> {
    match (mode & group_bit != 0, mode & other_bit != 0) {
        (true, true) => Some("its group and all users"),
        (true, false) => Some("its group"),
        (false, true) => Some("all users"),
        (false, false) => None,
    }
}

/// Warnings (without the `warning: ` prefix) for one file used by a
/// firewall running as root, given the file's and its directory's owner
/// and mode.
#[must_use]
pub fn file_warnings(path: &Path, role: Role, file: Owner, dir: Option<Owner>) -> Vec<String> {
    let shown = path.display();
    let mut out = Vec::new();
    if file.uid != 0 {
        out.push(format!(
            "{shown} is owned by uid {}, not root; that user can change the firewall \
             (chown root {shown})",
            file.uid
        ));
    }
    if let Some(whom) = who(file.mode, 0o020, 0o002) {
        out.push(format!(
            "{shown} is writable by {whom} (mode {:04o}); they can change the firewall \
             (chmod go-w {shown})",
            file.mode
        ));
    }
    if let (Some(dir), Some(parent)) = (dir, path.parent()) {
        // A sticky directory (/tmp) lets nobody else replace the file.
        let sticky = dir.mode & 0o1000 != 0;
        if let (false, Some(whom)) = (sticky, who(dir.mode, 0o020, 0o002)) {
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            out.push(format!(
                "directory {} is writable by {whom} (mode {:04o}); they can replace {shown} \
                 (chmod go-w {})",
                parent.display(),
                dir.mode,
                parent.display()
            ));
        }
    }
    if role == Role::Config && file.mode & 0o004 != 0 {
        out.push(format!(
            "{shown} is readable by all users (mode {:04o}); if the rules are sensitive, \
             chmod o-r {shown}",
            file.mode
        ));
    }
    out
}

/// Warnings for the config and every set file it read, for a firewall
/// running as root (call only then). Files that vanished since are skipped.
#[must_use]
pub fn permission_warnings(cfg: &Config) -> Vec<String> {
    let mut files: Vec<(PathBuf, Role)> = vec![(cfg.path.clone(), Role::Config)];
    let mut seen = BTreeSet::new();
    for set in cfg.sets.values() {
        if let SetSource::File(path) = &set.source {
            if seen.insert(path.clone()) {
                files.push((path.clone(), Role::SetFile));
            }
        }
    }
    let mut out = Vec::new();
    let mut dirs_seen = BTreeSet::new();
    for (path, role) in files {
        let Some(file) = Owner::of(&path) else {
            continue;
        };
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
        // Report each directory once.
        let dir = match parent {
            Some(p) if dirs_seen.insert(p.to_path_buf()) => Owner::of(p),
            Some(_) => None,
            None if dirs_seen.insert(PathBuf::from(".")) => Owner::of(Path::new(".")),
            None => None,
        };
        out.extend(file_warnings(&path, role, file, dir));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT_DIR: Owner = Owner {
        mode: 0o755,
        uid: 0,
    };

    fn warn(role: Role, mode: u32, uid: u32, dir: Owner) -> Vec<String> {
        file_warnings(
            Path::new("/etc/xdpwall/rules.toml"),
            role,
            Owner { mode, uid },
            Some(dir),
        )
    }

    #[test]
    fn a_private_root_owned_config_has_no_warnings() {
        assert!(warn(Role::Config, 0o600, 0, ROOT_DIR).is_empty());
        assert!(warn(Role::Config, 0o640, 0, ROOT_DIR).is_empty());
        // Set files may be readable by all.
        assert!(warn(Role::SetFile, 0o644, 0, ROOT_DIR).is_empty());
    }

    #[test]
    fn writable_by_others_names_the_fix() {
        assert_eq!(
            warn(Role::SetFile, 0o666, 0, ROOT_DIR),
            vec![
                "/etc/xdpwall/rules.toml is writable by its group and all users (mode 0666); \
                 they can change the firewall (chmod go-w /etc/xdpwall/rules.toml)"
            ]
        );
        let w = warn(Role::Config, 0o620, 0, ROOT_DIR);
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("writable by its group (mode 0620)"));
    }

    #[test]
    fn readable_config_gets_the_softer_warning() {
        assert_eq!(
            warn(Role::Config, 0o644, 0, ROOT_DIR),
            vec![
                "/etc/xdpwall/rules.toml is readable by all users (mode 0644); if the rules \
                 are sensitive, chmod o-r /etc/xdpwall/rules.toml"
            ]
        );
    }

    #[test]
    fn other_owners_and_open_directories_are_named() {
        let w = warn(Role::SetFile, 0o644, 1000, ROOT_DIR);
        assert_eq!(
            w,
            vec![
                "/etc/xdpwall/rules.toml is owned by uid 1000, not root; that user can change \
                 the firewall (chown root /etc/xdpwall/rules.toml)"
            ]
        );
        let open = Owner {
            mode: 0o777,
            uid: 0,
        };
        let w = warn(Role::SetFile, 0o644, 0, open);
        assert_eq!(
            w,
            vec![
                "directory /etc/xdpwall is writable by its group and all users (mode 0777); \
                 they can replace /etc/xdpwall/rules.toml (chmod go-w /etc/xdpwall)"
            ]
        );
        // Sticky like /tmp: nobody else can replace the file.
        let tmp = Owner {
            mode: 0o1777,
            uid: 0,
        };
        assert!(warn(Role::SetFile, 0o644, 0, tmp).is_empty());
    }

    #[test]
    fn warnings_come_from_the_real_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = crate::testutil::TempDir::new("perms");
        std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        dir.write("block.txt", "10.0.0.0/8\n");
        let path = dir.write(
            "rules.toml",
            "[sets]\nb = { file = \"block.txt\" }\nc = { file = \"block.txt\" }\n",
        );
        let set = dir.0.join("block.txt");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        std::fs::set_permissions(&set, std::fs::Permissions::from_mode(0o646)).expect("chmod");
        let cfg = crate::load_config(&path).expect("valid");
        let euid = Owner::of(&path).map_or(0, |o| o.uid);
        let w: Vec<String> = permission_warnings(&cfg)
            .into_iter()
            .filter(|w| !w.contains("owned by"))
            .collect();
        assert_eq!(
            w,
            vec![format!(
                "{} is writable by all users (mode 0646); they can change the firewall \
                 (chmod go-w {})",
                set.display(),
                set.display()
            )],
            "set file once, though two sets name it (uid {euid})"
        );
    }
}
