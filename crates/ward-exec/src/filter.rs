//! The program's last restrictions before `execve`: the seccomp filters (compiled in the
//! supervisor, applied in the program's process) and Landlock.

use std::collections::BTreeMap;
use std::path::PathBuf;

use landlock::{
    path_beneath_rules, Access, AccessFs, AccessNet, Ruleset, RulesetAttr, RulesetCreatedAttr,
    RulesetStatus, Scope, ABI,
};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::error::ExecError;

#[cfg(target_arch = "x86_64")]
const ARCH: TargetArch = TargetArch::x86_64;
#[cfg(target_arch = "aarch64")]
const ARCH: TargetArch = TargetArch::aarch64;
#[cfg(target_arch = "riscv64")]
const ARCH: TargetArch = TargetArch::riscv64;

/// The Landlock ABI whose rights are asked for (best effort: the kernel's own ABI may be lower).
/// Not higher: ABI 9's `ResolveUnix` would also need rules for every named socket.
const LANDLOCK_ABI: ABI = ABI::V6;

/// Syscalls that must fail with `ENOSYS`, so that libc falls back to older ones that the filter
/// can inspect (`clone3` → `clone`) or that do not bypass it (`io_uring` creates sockets and
/// opens files without the syscalls).
fn enosys_syscalls() -> Vec<i64> {
    vec![
        libc::SYS_clone3,
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
    ]
}

/// Syscalls refused outright with `EPERM`: reaching other processes' memory, changing mounts,
/// loading code into the kernel, keys, perf.
fn eperm_syscalls() -> Vec<i64> {
    vec![
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_chroot,
        libc::SYS_fsopen,
        libc::SYS_fsconfig,
        libc::SYS_fsmount,
        libc::SYS_fspick,
        libc::SYS_move_mount,
        libc::SYS_open_tree,
        libc::SYS_mount_setattr,
        libc::SYS_bpf,
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_perf_event_open,
        libc::SYS_setns,
        libc::SYS_userfaultfd,
    ]
}

fn compile(
    filter: Result<SeccompFilter, seccompiler::BackendError>,
) -> Result<BpfProgram, ExecError> {
    let filter = filter.map_err(|e| ExecError::Invalid(format!("seccomp filter: {e}")))?;
    BpfProgram::try_from(filter).map_err(|e| ExecError::Invalid(format!("seccomp filter: {e}")))
}

fn condition(arg: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition, ExecError> {
    SeccompCondition::new(arg, SeccompCmpArgLen::Qword, op, value)
        .map_err(|e| ExecError::Invalid(format!("seccomp condition: {e}")))
}

fn rule(conditions: Vec<SeccompCondition>) -> Result<SeccompRule, ExecError> {
    SeccompRule::new(conditions).map_err(|e| ExecError::Invalid(format!("seccomp rule: {e}")))
}

/// One filter per action (seccompiler's model), in the order they are applied.
pub(crate) fn seccomp_filters(deny_network: bool) -> Result<Vec<BpfProgram>, ExecError> {
    let mut filters = Vec::new();
    #[cfg(target_arch = "x86_64")]
    filters.push(x32_filter());

    let enosys: BTreeMap<i64, Vec<SeccompRule>> = enosys_syscalls()
        .into_iter()
        .map(|nr| (nr, Vec::new()))
        .collect();
    filters.push(compile(SeccompFilter::new(
        enosys,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        ARCH,
    ))?);

    let mut eperm: BTreeMap<i64, Vec<SeccompRule>> = eperm_syscalls()
        .into_iter()
        .map(|nr| (nr, Vec::new()))
        .collect();
    // New user namespaces would hand the program a full set of capabilities over them.
    let newuser = libc::CLONE_NEWUSER as u64;
    eperm.insert(
        libc::SYS_unshare,
        vec![rule(vec![condition(
            0,
            SeccompCmpOp::MaskedEq(newuser),
            newuser,
        )?])?],
    );
    // clone(2)'s flags are its first argument on every architecture this crate builds for.
    eperm.insert(
        libc::SYS_clone,
        vec![rule(vec![condition(
            0,
            SeccompCmpOp::MaskedEq(newuser),
            newuser,
        )?])?],
    );
    filters.push(compile(SeccompFilter::new(
        eperm,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        ARCH,
    ))?);

    if deny_network {
        // Every socket family but AF_UNIX: no inet, no netlink, no packet sockets.
        let sockets = BTreeMap::from([(
            libc::SYS_socket,
            vec![rule(vec![condition(
                0,
                SeccompCmpOp::Ne,
                libc::AF_UNIX as u64,
            )?])?],
        )]);
        filters.push(compile(SeccompFilter::new(
            sockets,
            SeccompAction::Allow,
            SeccompAction::Errno(libc::EACCES as u32),
            ARCH,
        ))?);
    }
    Ok(filters)
}

/// seccompiler checks the architecture but not the x32 ABI, whose syscall numbers have bit 30
/// set and would slip past rules keyed by x86_64 numbers: refuse them all with `ENOSYS`.
#[cfg(target_arch = "x86_64")]
fn x32_filter() -> BpfProgram {
    use seccompiler::sock_filter;
    const BPF_LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const BPF_JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const BPF_JSET_K: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
    const BPF_RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;
    // struct seccomp_data { int nr; __u32 arch; ... }
    const OFFSET_NR: u32 = 0;
    const OFFSET_ARCH: u32 = 4;
    let insn = |code, jt, jf, k| sock_filter { code, jt, jf, k };
    vec![
        insn(BPF_LD_W_ABS, 0, 0, OFFSET_ARCH),
        // Another architecture: the other filters kill it.
        insn(BPF_JEQ_K, 0, 3, AUDIT_ARCH_X86_64),
        insn(BPF_LD_W_ABS, 0, 0, OFFSET_NR),
        insn(BPF_JSET_K, 0, 1, X32_SYSCALL_BIT),
        insn(
            BPF_RET_K,
            0,
            0,
            libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
        ),
        insn(BPF_RET_K, 0, 0, libc::SECCOMP_RET_ALLOW),
    ]
}

/// Applies the filters to the calling thread (and so to the program after `execve`). Sets
/// `PR_SET_NO_NEW_PRIVS` first, as seccomp requires without `CAP_SYS_ADMIN`.
pub(crate) fn apply_seccomp(filters: &[BpfProgram]) -> Result<(), String> {
    for filter in filters {
        seccompiler::apply_filter(filter).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Restricts the calling process with Landlock, best effort across kernel ABIs: reading and
/// executing anywhere in the view (the mount namespace already defines what exists), writing
/// only beneath `writable`, the device nodes of `/dev` usable, TCP denied when `deny_network`,
/// and no signals or abstract sockets beyond the program's own processes.
pub(crate) fn apply_landlock(
    writable: &[PathBuf],
    deny_network: bool,
) -> Result<LandlockStatus, String> {
    let abi = LANDLOCK_ABI;
    let fail = |e: landlock::RulesetError| e.to_string();
    let mut ruleset = Ruleset::default()
        .handle_access(AccessFs::from_all(abi))
        .map_err(fail)?;
    if deny_network {
        ruleset = ruleset
            .handle_access(AccessNet::from_all(abi))
            .map_err(fail)?;
    }
    let ruleset = ruleset.scope(Scope::from_all(abi)).map_err(fail)?;
    let devices = AccessFs::from_read(abi) | AccessFs::WriteFile | AccessFs::IoctlDev;
    ruleset
        .create()
        .map_err(fail)?
        .add_rules(path_beneath_rules(["/"], AccessFs::from_read(abi)))
        .map_err(fail)?
        .add_rules(path_beneath_rules(["/dev"], devices))
        .map_err(fail)?
        .add_rules(path_beneath_rules(writable, AccessFs::from_all(abi)))
        .map_err(fail)?
        .restrict_self()
        .map_err(fail)
        .map(|status| match status.ruleset {
            RulesetStatus::FullyEnforced => LandlockStatus::FullyEnforced,
            RulesetStatus::PartiallyEnforced => LandlockStatus::PartiallyEnforced,
            _ => LandlockStatus::NotEnforced,
        })
}

/// How much of the Landlock restriction the kernel enforces for a program (Landlock is applied
/// best effort: an older kernel enforces fewer rights, one without Landlock none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LandlockStatus {
    /// Every requested right is restricted.
    FullyEnforced,
    /// The kernel's Landlock ABI is older than the one asked for: some rights are restricted.
    PartiallyEnforced,
    /// The kernel has no Landlock (or it is disabled): only namespaces, uid and seccomp apply.
    NotEnforced,
}

impl LandlockStatus {
    pub(crate) fn code(self) -> u8 {
        match self {
            LandlockStatus::FullyEnforced => 1,
            LandlockStatus::PartiallyEnforced => 2,
            LandlockStatus::NotEnforced => 3,
        }
    }

    pub(crate) fn from_code(code: i32) -> Self {
        match code {
            1 => LandlockStatus::FullyEnforced,
            2 => LandlockStatus::PartiallyEnforced,
            _ => LandlockStatus::NotEnforced,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a classic-BPF seccomp program made of the instructions `x32_filter` uses.
    #[cfg(target_arch = "x86_64")]
    fn run(program: &[seccompiler::sock_filter], nr: u32, arch: u32) -> u32 {
        let mut acc = 0u32;
        let mut pc = 0usize;
        loop {
            let insn = &program[pc];
            let code = u32::from(insn.code);
            pc += 1;
            match code {
                c if c == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS => {
                    acc = match insn.k {
                        0 => nr,
                        4 => arch,
                        k => panic!("load of offset {k}"),
                    }
                }
                c if c == libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K => {
                    pc += usize::from(if acc == insn.k { insn.jt } else { insn.jf });
                }
                c if c == libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K => {
                    pc += usize::from(if acc & insn.k != 0 { insn.jt } else { insn.jf });
                }
                c if c == libc::BPF_RET | libc::BPF_K => return insn.k,
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn x32_numbers_get_enosys_and_the_rest_passes() {
        const X86_64: u32 = 0xc000_003e;
        const I386: u32 = 0x4000_0003;
        let filter = x32_filter();
        let enosys = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
        let getpid = libc::SYS_getpid as u32;
        assert_eq!(run(&filter, getpid, X86_64), libc::SECCOMP_RET_ALLOW);
        assert_eq!(run(&filter, 0x4000_0000 | getpid, X86_64), enosys);
        assert_eq!(run(&filter, 0x4000_0000 | 512, X86_64), enosys);
        // Other architectures are left to seccompiler's own check (which kills them).
        assert_eq!(run(&filter, 0x4000_0000, I386), libc::SECCOMP_RET_ALLOW);
    }

    #[test]
    fn filters_compile_for_both_networks() {
        assert_eq!(
            seccomp_filters(true).unwrap().len(),
            seccomp_filters(false).unwrap().len() + 1
        );
    }
}
