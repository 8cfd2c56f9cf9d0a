//! Builds the transport bench's C reference consumer (c/consumer.c) against
//! the libbpf the Rust consumer links — libbpf-sys's vendored copy — so the
//! bench compares the two consumers, not two libbpf versions. The binary is
//! embedded into the crate and written out when the bench runs. A build
//! failure here does not fail the crate: the bench then skips the C rows and
//! says why.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let src = manifest.join("c/consumer.c");
    let abi = manifest.join("../../bpf");
    println!("cargo:rerun-if-changed={}", src.display());
    println!("cargo:rerun-if-changed={}", abi.join("abi.h").display());
    let bin = out.join("xdpwall-c-consumer");
    // libbpf-sys (links = "bpf") tells its dependents where its headers are;
    // its static library sits next to them.
    let result = match env::var_os("DEP_BPF_INCLUDE").map(PathBuf::from) {
        None => Err("libbpf-sys did not say where its headers are".to_string()),
        Some(include) => {
            let lib = include.join("../libbpf.a");
            match cc::Build::new().try_get_compiler() {
                Err(e) => Err(format!("no C compiler: {e}")),
                Ok(cc) => {
                    let mut cmd = Command::new(cc.path());
                    // The compiler's own flags (e.g. --target), then ours;
                    // -s: no symbols, the binary is embedded in xdpwall's.
                    cmd.args(cc.args()).args(["-O2", "-Wall", "-s", "-o"]);
                    compile(cmd, &bin, &include, &abi, &src, &lib)
                }
            }
        }
    };
    if let Err(e) = result {
        // The line that says what went wrong, not "In file included from".
        let why = e
            .lines()
            .find(|l| l.contains("error") || l.contains("cannot find"))
            .or_else(|| e.lines().next())
            .unwrap_or("")
            .to_string();
        println!("cargo:warning=the transport bench's C consumer was not built: {why}");
        println!("cargo:rustc-env=XDPWALL_C_CONSUMER_ERROR={why}");
        // Try again on the next build (after the user installed what was
        // missing): a file that never exists makes cargo re-run this script.
        println!(
            "cargo:rerun-if-changed={}",
            out.join("retry-the-c-consumer").display()
        );
        std::fs::write(&bin, b"").expect("write OUT_DIR");
    }
}

fn compile(
    mut cmd: Command,
    bin: &Path,
    include: &Path,
    abi: &Path,
    src: &Path,
    lib: &Path,
) -> Result<(), String> {
    cmd.arg(bin)
        .arg(format!("-I{}", include.display()))
        .arg(format!("-I{}", abi.display()))
        .arg(src)
        .arg(lib)
        .args(["-lelf", "-lz"]);
    match cmd.output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(String::from_utf8_lossy(&o.stderr).into_owned()),
        Err(e) => Err(format!("cannot run {:?}: {e}", cmd.get_program())),
    }
}
