//! The image's `User` (`name`, `uid`, `name:group`, `uid:gid`, …) as numeric ids, looked up in
//! the image's own `/etc/passwd` and `/etc/group` like a container engine does.

use std::io::Read;
use std::path::Path;

use crate::uids::RANGE;

/// Files larger than this are not an account database anyone means.
const MAX_DB_BYTES: u64 = 1 << 20;

/// The uid and gid (inside the container) the image's `user` names.
pub fn resolve(user: Option<&str>, rootfs: &Path) -> Result<(u32, u32), String> {
    let user = user.map(str::trim).unwrap_or_default();
    if user.is_empty() {
        return Ok((0, 0));
    }
    let (name, group) = match user.split_once(':') {
        Some((name, group)) => (name, Some(group)),
        None => (user, None),
    };
    let passwd = || read_db(rootfs, "passwd");
    let (uid, primary_gid) = match name.parse::<u32>() {
        Ok(uid) => {
            let gid = passwd()?
                .iter()
                .find(|f| f.get(2).and_then(|u| u.parse::<u32>().ok()) == Some(uid))
                .and_then(|f| f.get(3)?.parse().ok())
                .unwrap_or(0);
            (uid, gid)
        }
        Err(_) => {
            let entries = passwd()?;
            let entry = entries
                .iter()
                .find(|f| f.first().map(String::as_str) == Some(name))
                .ok_or_else(|| {
                    format!("the image's user {name:?} is not in its /etc/passwd; set a numeric user (USER 1000) in the image")
                })?;
            let field = |i: usize| entry.get(i).and_then(|v| v.parse::<u32>().ok());
            match (field(2), field(3)) {
                (Some(uid), Some(gid)) => (uid, gid),
                _ => {
                    return Err(format!(
                        "the /etc/passwd entry of user {name:?} in the image is malformed"
                    ));
                }
            }
        }
    };
    let gid = match group {
        None => primary_gid,
        Some(group) => match group.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => read_db(rootfs, "group")?
                .iter()
                .find(|f| f.first().map(String::as_str) == Some(group))
                .and_then(|f| f.get(2)?.parse().ok())
                .ok_or_else(|| format!("the image's group {group:?} is not in its /etc/group"))?,
        },
    };
    for (what, id) in [("uid", uid), ("gid", gid)] {
        if id >= RANGE {
            return Err(format!(
                "the image's {what} {id} is too large; instances map ids 0 to {}",
                RANGE - 1
            ));
        }
    }
    Ok((uid, gid))
}

/// The `:`-separated fields of each line of `/etc/<name>` in the image; an absent file is
/// empty. Symbolic links are not followed: the image is not trusted and the host is not its
/// root.
fn read_db(rootfs: &Path, name: &str) -> Result<Vec<Vec<String>>, String> {
    let etc = rootfs.join("etc");
    let path = etc.join(name);
    for p in [&etc, &path] {
        match std::fs::symlink_metadata(p) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(format!(
                    "/{} in the image is a symbolic link; it must be a plain file to look up the image's user",
                    p.strip_prefix(rootfs).unwrap_or(p).display()
                ));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(format!("read /etc/{name} of the image: {e}")),
        }
    }
    let mut text = String::new();
    std::fs::File::open(&path)
        .and_then(|f| f.take(MAX_DB_BYTES).read_to_string(&mut text))
        .map_err(|e| format!("read /etc/{name} of the image: {e}"))?;
    Ok(text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(':').map(str::to_owned).collect())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rootfs() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/app:/nologin\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        dir
    }

    #[test]
    fn names_and_numbers_resolve_through_the_images_own_account_files() {
        let dir = rootfs();
        let r = |u: Option<&str>| resolve(u, dir.path());
        assert_eq!(r(None), Ok((0, 0)));
        assert_eq!(r(Some("")), Ok((0, 0)));
        assert_eq!(r(Some("app")), Ok((1000, 1001)));
        assert_eq!(r(Some("1000")), Ok((1000, 1001)));
        assert_eq!(r(Some("4242")), Ok((4242, 0)));
        assert_eq!(r(Some("app:staff")), Ok((1000, 50)));
        assert_eq!(r(Some("7:8")), Ok((7, 8)));
    }

    #[test]
    fn unknown_names_big_ids_and_linked_account_files_are_refused_with_reasons() {
        let dir = rootfs();
        let r = |u: &str| resolve(Some(u), dir.path()).unwrap_err();
        assert!(r("nobody").contains("not in its /etc/passwd"));
        assert!(r("app:wheel").contains("not in its /etc/group"));
        assert!(r("70000").contains("too large"));

        let linked = tempfile::tempdir().unwrap();
        std::fs::create_dir(linked.path().join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", linked.path().join("etc/passwd")).unwrap();
        let err = resolve(Some("root"), linked.path()).unwrap_err();
        assert!(err.contains("symbolic link"), "{err}");
    }

    proptest::proptest! {
        #[test]
        fn any_user_string_resolves_or_is_refused_without_panicking(user in "\\PC{0,40}") {
            let dir = rootfs();
            let _ = resolve(Some(&user), dir.path());
        }
    }
}
