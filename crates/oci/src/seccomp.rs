//! The default seccomp profile: allow by default, refuse what a contained process never needs.

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompOperator, LinuxSyscall,
};

/// Refused with EPERM: mounting, tracing, kernel modules and keyrings, namespaces, eBPF,
/// clocks, swap, raw I/O ports, io_uring, and other calls that reach kernel code unused by
/// applications. Names a kernel or libseccomp does not know are skipped by runc.
pub const DENIED: &[&str] = &[
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_kernel_syms",
    "init_module",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mount",
    "mount_setattr",
    "move_mount",
    "nfsservctl",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "query_module",
    "quotactl",
    "quotactl_fd",
    "reboot",
    "request_key",
    "setns",
    "settimeofday",
    "stime",
    "swapoff",
    "swapon",
    "_sysctl",
    "syslog",
    "umount",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
    "vhangup",
];

/// The `CLONE_NEW*` flags `clone` may not carry (`CLONE_NEWTIME` only exists for `clone3`).
pub const CLONE_NAMESPACE_FLAGS: [u64; 7] = [
    0x0002_0000, // CLONE_NEWNS
    0x0200_0000, // CLONE_NEWCGROUP
    0x0400_0000, // CLONE_NEWUTS
    0x0800_0000, // CLONE_NEWIPC
    0x1000_0000, // CLONE_NEWUSER
    0x2000_0000, // CLONE_NEWPID
    0x4000_0000, // CLONE_NEWNET
];

/// Bits `personality` may set: `PER_LINUX32` (0x8) and `UNAME26` (0x20000). With these, the
/// allowed values are Docker's: 0, 0x8, 0x20000, 0x20008, and 0xffffffff (a query).
const PERSONALITY_ALLOWED_BITS: u64 = 0x8 | 0x2_0000;
const BIT31: u64 = 0x8000_0000;

const EPERM: u32 = libc::EPERM as u32;
const ENOSYS: u32 = libc::ENOSYS as u32;

/// The profile for x86_64 and aarch64; 32-bit compat syscalls match no listed architecture and
/// are refused by the runtime's bad-architecture action.
pub fn default_seccomp() -> LinuxSeccomp {
    let mut syscalls = vec![deny(DENIED, EPERM, None)];
    // clone3 passes its flags in memory a filter cannot read; ENOSYS makes libc fall back
    // to clone, whose flags it can.
    syscalls.push(deny(&["clone3"], ENOSYS, None));
    for flag in CLONE_NAMESPACE_FLAGS {
        syscalls.push(deny(&["clone"], EPERM, Some(masked(flag, flag))));
    }
    syscalls.extend(personality_rules());
    let mut seccomp = LinuxSeccomp::default();
    seccomp
        .set_default_action(LinuxSeccompAction::ScmpActAllow)
        .set_architectures(Some(vec![Arch::ScmpArchX86_64, Arch::ScmpArchAarch64]))
        .set_syscalls(Some(syscalls));
    seccomp
}

/// One rule per condition, since runtimes AND the conditions of one rule (and runc ORs them
/// when they name the same argument): a value is refused if any rule matches it.
///
/// With bit 31 clear, any bit outside the allowed ones is refused; with bit 31 set, anything
/// but all 32 bits (the query 0xffffffff) is refused.
fn personality_rules() -> Vec<LinuxSyscall> {
    let mut rules = Vec::new();
    for bit in (0..31).map(|n| 1u64 << n) {
        if bit & PERSONALITY_ALLOWED_BITS == 0 {
            rules.push(deny(
                &["personality"],
                EPERM,
                Some(masked(bit | BIT31, bit)),
            ));
        }
    }
    for bit in (0..31).map(|n| 1u64 << n) {
        rules.push(deny(
            &["personality"],
            EPERM,
            Some(masked(bit | BIT31, BIT31)),
        ));
    }
    rules
}

/// Argument 0 matches when `arg0 & mask == value`.
fn masked(mask: u64, value: u64) -> LinuxSeccompArg {
    LinuxSeccompArgBuilder::default()
        .index(0usize)
        .value(mask)
        .value_two(value)
        .op(LinuxSeccompOperator::ScmpCmpMaskedEq)
        .build()
        .expect("a seccomp arg builder with every field set cannot fail")
}

fn deny(names: &[&str], errno: u32, arg: Option<LinuxSeccompArg>) -> LinuxSyscall {
    let mut rule = LinuxSyscall::default();
    rule.set_names(names.iter().map(|name| name.to_string()).collect())
        .set_action(LinuxSeccompAction::ScmpActErrno)
        .set_errno_ret(Some(errno))
        .set_args(arg.map(|arg| vec![arg]));
    rule
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Evaluates the profile's rules for one syscall the way the kernel filter would.
    fn refused(seccomp: &LinuxSeccomp, name: &str, arg0: u64) -> Option<u32> {
        let rules = seccomp.syscalls().as_ref().unwrap();
        let matches = |rule: &LinuxSyscall| {
            rule.names().iter().any(|n| n == name)
                && rule.args().iter().flatten().all(|arg| {
                    assert_eq!(arg.op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
                    arg0 & arg.value() == arg.value_two().unwrap()
                })
        };
        rules
            .iter()
            .find(|rule| matches(rule))
            .map(|rule| rule.errno_ret().unwrap())
    }

    #[test]
    fn the_brief_s_deny_list_is_refused_with_eperm() {
        let seccomp = default_seccomp();
        assert_eq!(seccomp.default_action(), LinuxSeccompAction::ScmpActAllow);
        for name in [
            "mount",
            "umount2",
            "pivot_root",
            "ptrace",
            "kexec_load",
            "kexec_file_load",
            "bpf",
            "keyctl",
            "add_key",
            "request_key",
            "init_module",
            "finit_module",
            "delete_module",
            "reboot",
            "swapon",
            "swapoff",
            "unshare",
            "setns",
            "open_by_handle_at",
            "userfaultfd",
            "perf_event_open",
            "acct",
            "settimeofday",
            "clock_settime",
            "iopl",
            "ioperm",
        ] {
            assert_eq!(refused(&seccomp, name, 0), Some(EPERM), "{name}");
        }
        assert_eq!(refused(&seccomp, "clone3", 0), Some(ENOSYS));
        assert_eq!(refused(&seccomp, "read", 0), None);
    }

    #[test]
    fn clone_is_allowed_for_threads_and_forks_but_not_with_namespace_flags() {
        let seccomp = default_seccomp();
        // What glibc passes for pthread_create and for fork.
        assert_eq!(refused(&seccomp, "clone", 0x003d_0f00), None);
        assert_eq!(refused(&seccomp, "clone", 0x0120_0011), None);
        for flag in CLONE_NAMESPACE_FLAGS {
            assert_eq!(
                refused(&seccomp, "clone", flag | 0x11),
                Some(EPERM),
                "{flag:#x}"
            );
        }
    }

    #[test]
    fn personality_allows_exactly_dockers_values() {
        let seccomp = default_seccomp();
        for ok in [0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff] {
            assert_eq!(refused(&seccomp, "personality", ok), None, "{ok:#x}");
        }
        // ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC, MMAP_PAGE_ZERO, and a disguised query.
        for bad in [0x4_0000, 0x40_0000, 0x10_0000, 0x8004_0000, 0xffff_fffe] {
            assert_eq!(
                refused(&seccomp, "personality", bad),
                Some(EPERM),
                "{bad:#x}"
            );
        }
    }

    #[test]
    fn the_rules_match_the_snapshot() {
        let lines: Vec<String> = default_seccomp()
            .syscalls()
            .iter()
            .flatten()
            .map(|rule| {
                let args = rule.args().iter().flatten().map(|arg| {
                    format!(
                        " if arg{} & {:#x} == {:#x}",
                        arg.index(),
                        arg.value(),
                        arg.value_two().unwrap()
                    )
                });
                let errno = rule.errno_ret().unwrap();
                format!(
                    "{} -> errno {errno}{}",
                    rule.names().join(" "),
                    args.collect::<String>()
                )
            })
            .collect();
        insta::assert_snapshot!("default_seccomp_rules", lines.join("\n"));
    }

    proptest! {
        #[test]
        fn any_other_personality_value_is_refused(value in any::<u32>()) {
            let allowed = [0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff].contains(&value);
            let refused = refused(&default_seccomp(), "personality", u64::from(value));
            prop_assert_eq!(refused.is_none(), allowed);
        }
    }
}
