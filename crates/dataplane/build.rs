//! Compiles the BPF objects (bpf/*.bpf.c) with clang and generates their skeletons.

use std::env;
use std::ffi::OsString;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

fn main() {
    let manifest =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let bpf_dir = manifest.join("../../bpf");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));

    // Only clang-19 exists on Debian 12 by default; XDPWALL_CLANG overrides.
    let clang = env::var_os("XDPWALL_CLANG").unwrap_or_else(|| OsString::from("clang-19"));
    // `clang_args` replaces libbpf-cargo's extra args (it still adds
    // -g -O2 -target bpf): the uapi headers' asm/ lives under the multiarch dir.
    let multiarch = format!("-I/usr/include/{}-linux-gnu", env::consts::ARCH);
    let args: Vec<OsString> = vec![
        multiarch.into(),
        OsString::from(format!("-I{}", bpf_dir.display())),
        "-Wall".into(),
        "-Werror".into(),
    ];

    // The XDP program, and the tracepoint programs counting XDP errors.
    for (src, skel) in [
        ("xdpwall.bpf.c", "xdpwall.skel.rs"),
        ("xdperr.bpf.c", "xdperr.skel.rs"),
    ] {
        SkeletonBuilder::new()
            .source(bpf_dir.join(src))
            .clang(&clang)
            .clang_args(args.clone())
            .build_and_generate(out_dir.join(skel))
            .unwrap_or_else(|e| {
                panic!(
                    "building {src} failed: {e:#}\n\
                     (needs clang-19 and linux-libc-dev: run scripts/setup.sh as root)"
                )
            });
    }

    // Rebuild when any BPF source or header changes, not just the .bpf.c.
    println!("cargo:rerun-if-changed={}", bpf_dir.display());
    for entry in std::fs::read_dir(&bpf_dir).expect("bpf/ exists").flatten() {
        println!("cargo:rerun-if-changed={}", entry.path().display());
    }
    println!("cargo:rerun-if-env-changed=XDPWALL_CLANG");
}
