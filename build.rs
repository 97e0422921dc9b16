//! Links the pieces the engine crates leave out: espeak-ng (built by espeak-rs-sys)
//! was configured against Debian's libsonic-dev, whose static library must be named here.
fn main() {
    println!("cargo:rustc-link-search=native=/usr/lib/x86_64-linux-gnu");
    println!("cargo:rustc-link-lib=static=sonic");
    println!("cargo:rerun-if-changed=build.rs");
}
