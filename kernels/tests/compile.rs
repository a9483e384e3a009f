//! Every kernel family compiles with NVRTC for every target, without a GPU.
//!
//! NVRTC comes from NVIDIA's PyPI wheel: `eval "$(bash kernels/ci/fetch-nvrtc.sh)"` sets
//! `LD_LIBRARY_PATH` and `NEGOPT_CUDA_INCLUDE`. Without it the test prints that it skipped;
//! with `CI` set and `NEGOPT_REQUIRE_NVRTC=1` a missing NVRTC fails the test instead, so CI
//! cannot pass by skipping.

use negopt_kernels::{Arch, Compiler, DiskCache, Error, Family};

fn compiler_or_skip(test: &str) -> Option<Compiler> {
    match Compiler::from_env() {
        Ok(c) => Some(c),
        Err(e @ Error::NvrtcUnavailable { .. }) => {
            let required = std::env::var_os("CI").is_some()
                && std::env::var("NEGOPT_REQUIRE_NVRTC").as_deref() == Ok("1");
            assert!(
                !required,
                "{test}: NVRTC is required here (CI, NEGOPT_REQUIRE_NVRTC=1): {e}"
            );
            println!("{test}: skipped (no NVRTC): {e}");
            None
        }
        Err(e) => panic!("{test}: {e}"),
    }
}

#[test]
fn every_kernel_compiles_for_every_arch() {
    let Some(compiler) = compiler_or_skip("every_kernel_compiles_for_every_arch") else {
        return;
    };
    // A private cache folder, so this test really runs NVRTC and then proves the cache hits.
    let dir = tempfile::tempdir().unwrap();
    let compiler = compiler.with_cache(Some(DiskCache::new(dir.path())));
    let (major, minor) = compiler.version();
    println!("NVRTC {major}.{minor}");
    let mut compiled_count = 0;
    for arch in Arch::ALL {
        for family in Family::ALL {
            let compiled = compiler
                .compile(family, arch)
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(!compiled.from_cache);
            assert!(
                !compiled.log.contains("warning"),
                "{family} for {arch} compiles with warnings:\n{}",
                compiled.log
            );
            assert_eq!(compiled.cubin.is_some(), arch.is_real(), "{family} {arch}");
            let entries = compiled.entry_points();
            for name in family.entry_points() {
                assert!(
                    entries.contains(&name),
                    "{family} for {arch}: {name} missing from the PTX (has {entries:?})"
                );
                println!("compiled {arch:>10} {family:<13} {name}");
                compiled_count += 1;
            }
            let again = compiler.compile(family, arch).unwrap();
            assert!(
                again.from_cache,
                "{family} {arch}: the second compile missed the cache"
            );
            assert_eq!(again.ptx, compiled.ptx);
            assert_eq!(again.cubin, compiled.cubin);
        }
    }
    println!("{compiled_count} kernels compiled");
}

#[test]
fn a_broken_source_reports_the_compile_log() {
    let Some(compiler) = compiler_or_skip("a_broken_source_reports_the_compile_log") else {
        return;
    };
    let source = "#include \"common.cuh\"\nextern \"C\" __global__ void broken(float* x) { x[0] = undefined_name; }\n";
    match compiler.compile_source("broken", source, Arch::Compute80) {
        Err(Error::Compile { family, log, .. }) => {
            assert_eq!(family, "broken");
            assert!(
                log.contains("undefined_name"),
                "log should name the error: {log}"
            );
        }
        other => panic!("expected a compile error, got {other:?}"),
    }
    // The shared header resolves, so a correct kernel using it compiles.
    let ok = "#include \"common.cuh\"\nextern \"C\" __global__ void fine(float* x) { x[0] = warp_sum(x[0]); }\n";
    let compiled = compiler.compile_source("fine", ok, Arch::Sm90a).unwrap();
    assert_eq!(compiled.entry_points(), vec!["fine".to_string()]);
}
