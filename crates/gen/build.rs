//! Compiles the generator's XDP object (bpf/gen.bpf.c) with clang and
//! generates its skeleton, as crates/dataplane/build.rs does for xdpwall's.

use std::env;
use std::ffi::OsString;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

fn main() {
    let manifest =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let bpf_dir = manifest.join("bpf");
    let src = bpf_dir.join("gen.bpf.c");
    let out =
        PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("gen.skel.rs");

    let clang = env::var_os("XDPWALL_CLANG").unwrap_or_else(|| OsString::from("clang-19"));
    let multiarch = format!("-I/usr/include/{}-linux-gnu", env::consts::ARCH);
    let args: Vec<OsString> = vec![
        multiarch.into(),
        OsString::from(format!("-I{}", bpf_dir.display())),
        "-Wall".into(),
        "-Werror".into(),
    ];

    SkeletonBuilder::new()
        .source(&src)
        .clang(&clang)
        .clang_args(args)
        .build_and_generate(&out)
        .unwrap_or_else(|e| {
            panic!(
                "building the generator's XDP program failed: {e:#}\n\
                 (needs clang-19 and linux-libc-dev: run scripts/setup.sh as root)"
            )
        });

    println!("cargo:rerun-if-changed={}", bpf_dir.display());
    for entry in std::fs::read_dir(&bpf_dir).expect("bpf/ exists").flatten() {
        println!("cargo:rerun-if-changed={}", entry.path().display());
    }
    println!("cargo:rerun-if-env-changed=XDPWALL_CLANG");
}
