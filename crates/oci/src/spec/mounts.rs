//! The container's mounts: runc's minimal /dev, /proc, read-only /sys, a sized /tmp, DNS files.

use oci_spec::OciSpecError;
use oci_spec::runtime::{Mount, MountBuilder};

use super::SpecOptions;

fn mount(
    destination: &str,
    typ: &str,
    source: &str,
    options: &[&str],
) -> Result<Mount, OciSpecError> {
    MountBuilder::default()
        .destination(destination)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
        .build()
}

/// A fresh sysfs when the container gets its own network namespace. A sysfs mount is refused
/// (EPERM) in a user namespace that does not own the network namespace, which is the case for
/// a namespace made beforehand by the host; then the host's /sys is bound read-only, as podman
/// does (runc 1.1 has no fallback of its own).
fn sys(opts: &SpecOptions) -> Result<Mount, OciSpecError> {
    let options = ["nosuid", "noexec", "nodev", "ro"];
    match opts.netns_path {
        None => mount("/sys", "sysfs", "sysfs", &options),
        Some(_) => mount(
            "/sys",
            "bind",
            "/sys",
            &["rbind", "nosuid", "noexec", "nodev", "ro"],
        ),
    }
}

pub(super) fn mounts(opts: &SpecOptions) -> Result<Vec<Mount>, OciSpecError> {
    let tmp_size = format!("size={}", opts.tmp_size_bytes);
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        sys(opts)?,
        // Read-only, so runtimes that size themselves from their limits (JVM, Go) can see them.
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        )?,
        mount(
            "/tmp",
            "tmpfs",
            "tmpfs",
            &["nosuid", "nodev", "mode=1777", &tmp_size],
        )?,
    ];
    for (destination, source) in [
        ("/etc/resolv.conf", &opts.resolv_conf),
        ("/etc/hosts", &opts.hosts),
    ] {
        if let Some(source) = source {
            let source = source.to_string_lossy();
            let options = ["rbind", "ro", "nosuid", "nodev", "noexec"];
            mounts.push(mount(destination, "bind", &source, &options)?);
        }
    }
    for bind in &opts.binds {
        let mut options = vec!["rbind", "nosuid", "nodev"];
        if bind.readonly {
            options.push("ro");
        }
        mounts.push(mount(
            &bind.destination.to_string_lossy(),
            "bind",
            &bind.source.to_string_lossy(),
            &options,
        )?);
    }
    Ok(mounts)
}
