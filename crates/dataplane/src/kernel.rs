//! What the running kernel offers beyond the documented minimum (Linux
//! 5.18), found in its BTF rather than guessed from its version.

use std::sync::OnceLock;

use libbpf_rs::btf::{Btf, BtfKind, BtfType};

/// Whether the kernel has the `bpf_cast_to_kern_ctx` kfunc (Linux >= 6.2),
/// which lets the program read a linear frame's length without a helper
/// call. Looked up once per process in `/sys/kernel/btf/vmlinux`; without
/// that BTF the program could not load anyway, so `false` is safe.
#[must_use]
pub fn has_kern_ctx() -> bool {
    static FOUND: OnceLock<bool> = OnceLock::new();
    *FOUND.get_or_init(|| has_func("bpf_cast_to_kern_ctx"))
}

fn has_func(name: &str) -> bool {
    let Ok(btf) = Btf::from_vmlinux() else {
        return false;
    };
    btf.type_by_name::<BtfType<'_>>(name)
        .is_some_and(|t| t.kind() == BtfKind::Func)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Linux release as (major, minor), e.g. "6.18.44-fc" -> (6, 18).
    fn release() -> Option<(u32, u32)> {
        let r = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
        let mut it = r.trim().split(|c: char| !c.is_ascii_digit());
        Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
    }

    #[test]
    fn the_kfunc_is_found_exactly_on_kernels_that_have_it() {
        let Some(v) = release() else {
            return;
        };
        if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
            assert!(!has_kern_ctx(), "no BTF, nothing found");
            return;
        }
        // Mainline added the kfunc in 6.2; a backport could only make an
        // older kernel report it, so only the newer side is a hard rule.
        if v >= (6, 2) {
            assert!(
                has_kern_ctx(),
                "Linux {}.{} has bpf_cast_to_kern_ctx",
                v.0,
                v.1
            );
        }
        assert!(!has_func("xdpwall_no_such_kfunc"));
        assert!(!has_func("xdp_buff"), "a struct is not a function");
    }
}
