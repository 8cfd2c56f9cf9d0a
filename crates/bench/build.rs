//! Builds the transport bench's C reference consumer (c/consumer.c) against
//! the libbpf the Rust consumer links — libbpf-sys's vendored copy — so the
//! bench compares the two consumers, not two libbpf versions. The binary is
//! embedded into the crate and written out when the bench runs. A build
//! failure here does not fail the crate: the bench then skips the C rows and
//! says why.

use std::env;
use std::path::PathBuf;
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
            let cc = cc::Build::new().get_compiler();
            let mut cmd = Command::new(cc.path());
            // -s: no symbols, the binary is embedded in xdpwall's.
            cmd.args(["-O2", "-Wall", "-s", "-o"])
                .arg(&bin)
                .arg(format!("-I{}", include.display()))
                .arg(format!("-I{}", abi.display()))
                .arg(&src)
                .arg(&lib)
                .args(["-lelf", "-lz"]);
            match cmd.output() {
                Ok(o) if o.status.success() => Ok(()),
                Ok(o) => Err(String::from_utf8_lossy(&o.stderr).into_owned()),
                Err(e) => Err(format!("cannot run {}: {e}", cc.path().display())),
            }
        }
    };
    if let Err(e) = result {
        let first = e.lines().next().unwrap_or("").to_string();
        println!("cargo:warning=the transport bench's C consumer was not built: {first}");
        println!("cargo:rustc-env=XDPWALL_C_CONSUMER_ERROR={first}");
        std::fs::write(&bin, b"").expect("write OUT_DIR");
    }
}
