//! Generates the WIT bindings for the world `graph` (what `wit_bindgen::generate!` would expand
//! to) into `$OUT_DIR/bindings.rs`.
//!
//! Done here rather than with the proc macro so that the template's rlib depends on no host
//! crate: the host then ships only wasm32 rlibs to rustc. The output holds no absolute path, so
//! the rlib is the same wherever the checkout lives.
use std::error::Error;
use std::path::PathBuf;

use wit_bindgen_core::WorldGenerator;
use wit_bindgen_core::wit_parser::Resolve;

fn main() -> Result<(), Box<dyn Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let wit = manifest_dir.join("..").join("wit");
    println!("cargo:rerun-if-changed={}", wit.display());
    println!("cargo:rerun-if-changed=build.rs");

    let mut resolve = Resolve::default();
    let (package, _sources) = resolve.push_path(&wit)?;
    let world = resolve.select_world(&[package], Some("graph"))?;
    let options = wit_bindgen_rust::Opts {
        format: true,
        pub_export_macro: true,
        export_macro_name: Some("__graphjit_export_world".to_owned()),
        default_bindings_module: Some("graphjit_guest::bindings".to_owned()),
        runtime_path: Some("graphjit_guest::__wit_bindgen::rt".to_owned()),
        ..Default::default()
    };
    let mut files = wit_bindgen_core::Files::default();
    options.build().generate(&mut resolve, world, &mut files)?;
    let mut source = Vec::new();
    for (_name, contents) in files.iter() {
        source.extend_from_slice(contents);
    }
    std::fs::write(out_dir.join("bindings.rs"), source)?;
    Ok(())
}
