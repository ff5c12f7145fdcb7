//! Links the `berth` binary as a position-dependent executable.
//!
//! Every running container keeps one `berth` process resident (its monitor). As a PIE, the
//! dynamic loader rewrites ~35,000 relative relocations in each of them at start, which
//! dirties about 640 KB of `.data.rel.ro` per process: half of a monitor's memory, and a
//! page-fault storm on every `run`. Linked without PIE, the linker resolves them once and
//! those pages stay clean and shared between all monitors. The cost is that the binary's
//! own code and data lose address randomisation (libraries, heap and stacks keep it), the
//! trade Go makes for every binary it builds, containerd's shims and Docker's included.
fn main() {
    println!("cargo:rustc-link-arg-bins=-no-pie");
}
